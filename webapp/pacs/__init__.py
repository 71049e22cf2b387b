"""The DICOM door (issue 12): X-rays arrive from a hospital's PACS or modalities over the DICOM
network (C-STORE to ``manage.py dicom_listener``), become cases through the same services as an
upload, and the results go back to the PACS (SC + SEG + SR, in the original study) from a Celery
task. Only nodes an administrator registered (``DicomNode``) may send, and each is mapped to the
user (and team) that owns what it sends."""
