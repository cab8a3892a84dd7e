"""The "not a chest X-ray" gate for contributed images: the model server's own check, the
one every analysed upload passes (``serving/pyfunc.py``: status ``not_xray``).

A contributed image feeds the datasets training reads, so one the gate refuses (a knee, a
document, noise) is not added, and the contributor is told why in the gate's words.

When the model server does not answer, the check cannot run: the contribution is then
kept (a radiologist chose and labelled it; refusing would stop contributions whenever the
model server is down) and says so, both on the page and on the record
(``review_reasons``: :data:`NOT_RUN`), so a reviewer can see it was never checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.intake.intake import Intake
from app.platform import contract, model_client
from app.platform.config import Config

# Review reasons are sentences the pages show as they are (app.clinical.answer).
NOT_RUN = ("The \"not a chest X-ray\" check did not run on this contribution (the model "
           "server did not answer).")


@dataclass(frozen=True)
class GateResult:
    """What the gate said of one image."""

    refused: bool = False
    message: str = ""  # for the contributor: why refused, or that it could not run
    ood_score: float | None = None  # the gate's score (above 1: refused)
    reasons: list[str] = field(default_factory=list)  # kept on the record


def check(cfg: Config, item: Intake) -> GateResult:
    """Ask the model server about ``item`` (no heatmap: only the gate's verdict is used)."""
    try:
        parsed = contract.parse_response(model_client.invoke(cfg, item.image, heatmap=False))
    except model_client.ModelServerError:
        return GateResult(
            message="The \"not a chest X-ray\" check could not run (the model server did "
                    "not answer): the image was kept unchecked, and its record says so.",
            reasons=[NOT_RUN])
    if parsed["status"] == "not_xray":
        why = parsed["ood_reason"] or "it does not look like a frontal chest X-ray"
        return GateResult(
            refused=True, ood_score=parsed["ood_score"],
            message=f"Not added: the \"not a chest X-ray\" check refused this image "
                    f"({why.rstrip('.')}). Contribute frontal chest X-rays only.")
    return GateResult(ood_score=parsed["ood_score"])
