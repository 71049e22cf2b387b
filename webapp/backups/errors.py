"""The one exception of this app: its message is the one line a command prints before exiting
non-zero. Messages name files by their path inside the backup (ids, never patient data)."""


class BackupError(Exception):
    pass
