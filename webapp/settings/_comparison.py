"""The comparison with the patient's prior film (issue 22; webapp.cases.services.comparison,
docs/develop/comparison-noise.md): below these changes of the outlined area, two positive films
of a patient are "unchanged".

Measured by bench/comparison_noise.py (bench/results/comparison_noise.json): 24 held-out positive
films (12 DICOM, 12 JPEG/PNG), each against 11 versions of itself (JPEG q75/q95, PNG, rotated
+-2/+-4 degrees, shifted 16 px, scaled 0.95/1.05), through the shipped model (torch-bf16, flip
TTA): 258 pairs called positive both times. |area_fraction change|: median 0.0009, p95 0.0044,
p99 0.0053, max 0.0059 of the image, about the same at every size from 0.5% to 5.3% of the
image; relative to the larger area, on films of 2% of the image or more (where 0.0059 no longer
covers it: a 5% magnification is 10% of the area): p95 0.10, max 0.128. Each threshold is the
largest change measured, plus 25%, rounded up. A change is beyond the noise only when it exceeds
both (the rule called none of the 258 pairs larger or smaller)."""

from ._environment import env

# Of the image, in Job.area_fraction's units (0.0075: 0.75 percentage points).
COMPARISON_AREA_NOISE = env.float("COMPARISON_AREA_NOISE", default=0.0075)
# Of the larger of the two areas.
COMPARISON_AREA_NOISE_RELATIVE = env.float("COMPARISON_AREA_NOISE_RELATIVE", default=0.16)
