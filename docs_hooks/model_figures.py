"""mkdocs hook: the model card's figures (``ml/model-card/*.png``, written by ``ml.evaluate`` and
``ml.train``) served as ``model/figures/<name>.png`` without a second copy in ``docs/``, so
that the pictures on the site are always the ones the model card and its tests read."""

from pathlib import Path

from mkdocs.structure.files import File

FIGURES = Path(__file__).resolve().parents[1] / "ml" / "model-card"


def on_files(files, config):
    for figure in sorted(FIGURES.glob("*.png")):
        files.append(File.generated(config, f"model/figures/{figure.name}",
                                    abs_src_path=str(figure)))
    return files
