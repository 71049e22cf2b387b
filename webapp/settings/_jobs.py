"""Celery, the inference worker and the job reconciler (read by webapp.celery_app with namespace
CELERY, and by workers/)."""

from pathlib import Path

from ._environment import BASE_DIR, VAR_DIR, env

# --- Celery (read by webapp.celery_app with namespace CELERY) ---------------------------------
def broker_transport_options(broker_url: str) -> dict:
    if broker_url.startswith("filesystem://"):
        # Only named here: webapp.celery_app.ensure_broker_folders creates them when the Celery
        # app's configuration is loaded (settings have no side effects at import).
        folder = Path(env("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
        # This transport never hands a consumed message back: a whole-worker crash loses it,
        # and the worker's restart (workers.startup) or the reconciler sends the job again.
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    # Must exceed the hard time limit, or Redis redelivers a job that is still running. A job
    # whose whole worker died is sent again by that worker's restart or by the reconciler, long
    # before this hour is up.
    return {"visibility_timeout": 3600}


CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
CELERY_TASK_IGNORE_RESULT = True  # results live in the database, not in a result backend
CELERY_TASK_ACKS_LATE = True  # a job is acknowledged only once it has finished...
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...and delivered again if its worker dies mid-job
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a busy worker does not sit on queued jobs
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=1)  # one model per process
CELERY_TASK_SOFT_TIME_LIMIT = env.int("INFERENCE_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("INFERENCE_HARD_TIME_LIMIT", default=150)
# Loading torch and the model in a fresh pool process takes seconds on a busy machine.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 120
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The model file the worker serves (read by workers.model; ml.serving.inference has the same default).
PNEUMOTHORAX_MODEL = Path(env("PNEUMOTHORAX_MODEL", default="")
                          or BASE_DIR / "ml" / "weights" / "pneumothorax-unet.safetensors")
# The model registry (webapp.cases.services.registry, docs/operate/model-registry.md): where
# registered files lie (empty: <PRIVATE_MEDIA_ROOT>/models, a volume every worker mounts), how
# often a worker reads which model is active (0: before every job), the largest admin upload.
MODEL_REGISTRY_DIR = env("MODEL_REGISTRY_DIR", default="")
MODEL_REGISTRY_CHECK_S = env.float("MODEL_REGISTRY_CHECK_S", default=2.0)
MODEL_UPLOAD_MAX_MB = env.int("MODEL_UPLOAD_MAX_MB", default=200)
# Which queue the web sends inference jobs to: "cpu", or "gpu" where GPU workers run.
INFERENCE_QUEUE = env("INFERENCE_QUEUE", default="cpu")
INFERENCE_THREADS = env.int("INFERENCE_THREADS", default=0) or None
# How the worker runs the network (ml.serving.backends): torch (eager fp32), torch-bf16, onnx, or
# auto = default_backend(), the fastest this machine supports. Each job records the one it ran on.
INFERENCE_BACKEND = env("INFERENCE_BACKEND", default="auto")
INFERENCE_MAX_ATTEMPTS = env.int("INFERENCE_MAX_ATTEMPTS", default=3)
# Unset: as the model file's operating point was chosen (with or without flip TTA).
INFERENCE_FLIP_TTA = env.bool("INFERENCE_FLIP_TTA") if env.str("INFERENCE_FLIP_TTA", default="") else None
# A worker consuming the "gpu" queue batches its jobs (workers.tasks.analyse_images_batch): up
# to GPU_BATCH_SIZE images in one forward pass, the first waiting at most GPU_BATCH_WAIT_MS for
# others (so one image alone still goes at once). The worker's prefetch is raised to the batch
# size; every message stays unacknowledged until its batch's results are written. 1: no batching.
GPU_BATCH_SIZE = env.int("GPU_BATCH_SIZE", default=16)
GPU_BATCH_WAIT_MS = env.int("GPU_BATCH_WAIT_MS", default=50)
# The reconciler (manage.py reconcile_jobs --every 60; webapp.cases.services.reconcile) sends
# again jobs queued longer than this after their last dispatch, and running jobs whose run
# started longer ago than the hard time limit + grace (issue 5).
RECONCILE_QUEUED_AFTER_S = env.int("RECONCILE_QUEUED_AFTER_S", default=300)
RECONCILE_RUNNING_GRACE_S = env.int("RECONCILE_RUNNING_GRACE_S", default=60)
# De-identify DICOM headers on ingest (PS3.15 basic profile; webapp.cases.services.deidentify).
DICOM_DEIDENTIFY_ON_STORE = env.bool("DICOM_DEIDENTIFY_ON_STORE", default=True)
