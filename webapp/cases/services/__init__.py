"""Business logic for cases, as plain functions that the pages, the REST API and the worker's
task share.

- access:      visible_cases, get_visible_case, get_visible_image (owner, teammates and
               admins; 404 for strangers), may_delete (owner and admins)
- submission:  submit_case, the one way a case comes in (pages, API, later a DICOM listener);
               prepare_case (every check, no transaction) + store_submission (a short one)
- checks:      read_checked, the one check of a file's content (within decode limits) that
               uploads, STOW-RS, the DICOM listener and the worker share
- teams:       submission_team (the new case's team: the uploader's choice or first team)
- uploads:     validate_upload(s), create_case (the storage transaction), UploadRejected,
               DuplicateReference
- files:       storage names of every file of a case, writing/removing them, serve (audit +
               FileResponse) for the pages and the API
- results:     DICOM SEG and Secondary Capture of a result, built on first request
- jobs:        claim_job, complete_job, fail_job, dispatch_job, enqueue_job_on_commit,
               stale_queued_job_ids
- pipeline:    analyse_job (what the worker task calls)
- reconcile:   reconcile_jobs, resend_orphaned_jobs (jobs the broker lost)
- status:      job_summary, case_result, case_status; with_status / filter_status /
               filter_positive (the same in SQL)
- worklist:    the order of the case list
- display:     the case page's texts; rendering: preview, mask and overlay PNGs
- deidentify, projection: what uploads check and change in a DICOM
- deletion:    delete_case (refused to a teammate), delete_case_by_system (+ tombstone)
- retention:   apply_retention (cases older than RETENTION_DAYS; run by the reconciler and
               manage.py apply_retention)
- model_versions: the models the workers registered
- registry:    the model registry: register_model, promote, roll_back, active_model (one
               active model, audited); model_files checks a file (loads, version = weights'
               hash); registry_page: the figures the registry page compares
- patients:    patient_key (HMAC of a DICOM's PatientID + issuer, or of a typed patient
               reference: Case.patient_key, never the identifier); patient_page: the films of
               a case's patient that the viewer may see, and their size plot
"""
