"""training/top_finetune_loso.py: the comparison table of finished results."""

from __future__ import annotations

from training.top_finetune_loso import table


def test_table_gives_mean_and_range_over_seeds_for_both_views():
    def row(tuned: float, frozen: float) -> dict:
        return {"all": {"balanced": tuned}, "frozen": {"balanced": frozen}}

    result = {"recipe": "lite0-top-finetune", "hparams": {"learning_rate": 1e-4},
              "held_out": {"hannover-covid": [row(0.5, 0.7), row(0.75, 0.7), row(1.0, 0.7)],
                           "ieee8023-adult": [row(0.25, 0.25), row(0.25, 0.5), row(0.25, 0.0)]}}
    lines = table([result]).splitlines()
    assert lines[0] == "| recipe | hannover-covid | ieee8023-adult | mean |"
    assert lines[2] == ("| lite0-top-finetune (Adam 0.0001) | 0.750 (0.500-1.000) "
                        "| 0.250 (0.250-0.250) | 0.500 |")
    assert lines[3] == ("| lite0-top-finetune, epoch 0 = frozen | 0.700 (0.700-0.700) "
                        "| 0.250 (0.000-0.500) | 0.475 |")
