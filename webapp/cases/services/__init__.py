"""Business logic for cases, as plain functions that views, tasks and (later) the REST API share.

- access:    visible_cases, get_visible_case, get_visible_image
- uploads:   validate_upload, create_case, UploadRejected
- jobs:      claim_job, complete_job, fail_job, dispatch_job, enqueue_job_on_commit,
             stale_queued_job_ids
- pipeline:  analyse_job (what the worker task calls)
- status:    job_summary, case_status
- deletion:  delete_case
"""
