"""How the product names itself in the DICOM objects it writes (SEG, SC: ``services.results``;
SR: ``services.structured_report``). Its own module, below both, so that neither imports the
other for these names."""

ALGORITHM_NAME = "Pneumothorax Triage U-Net"
MANUFACTURER = "Pneumothorax Triage"
