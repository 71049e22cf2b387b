"""Backup and restore of the whole product: database, private media and other data folders
(issue 24). The commands are ``manage.py backup`` and ``manage.py restore``; the logic lives in
``services`` and the modules it uses."""
