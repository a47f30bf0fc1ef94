"""One model-card layout for every network the project trains (teachers, students, the digits networks)."""
import pytest

from membench.features.train_classifier import render_card as classifier_card
from membench.features.train_digits import card as embedder_card
from membench.training.modelcard import REPRODUCIBILITY, render


def _teacher_card():
    record = {"dataset": "digits:n=64", "dataset_fingerprint": "f", "n_train": 64, "wall_time_s": 1.5, "device": "cpu",
              "threads": 1, "torch": "2", "final_loss": 0.1, "config": {"steps": 7}}
    evaluation = {"n": 10, "seed": 0, "fraction": 0.5, "ci_low": 0.2, "ci_high": 0.8}
    return render("t", "EDM teacher", "membench train --model t --out X", record, "abc", evaluation)


def _classifier_card():
    record = {"heldout_ci95": [0.9, 1.0], "config": {"seed": 0, "epochs": 1, "batch_size": 2, "lr": 0.1,
                                                     "weight_decay": 0.0, "shift": 1},
              "dataset": "digits:n=1497", "n_train": 1497, "dataset_fingerprint": "f", "n_heldout": 300,
              "heldout_accuracy": 0.99, "heldout_correct": 297, "train_accuracy": 1.0, "final_loss": 0.01,
              "wall_time_s": 2.0, "threads": 1, "torch": "2"}
    return classifier_card(record, "abc", "membench train-classifier --out X")


def _embedder_card():
    cfg = {"dim": 64, "pool": 10, "seed": 0, "tau": 0.1, "koleo": 0.5, "steps": 3, "batch_size": 4, "lr": 0.1}
    record = {"config": cfg, "wall_time_s": 1.0, "render_time_s": 0.1, "threads": 1, "torch": "2", "final_loss": 0.5}
    ev = {"noise_std": 0.1, "n_pos": 5, "n_neg": 6, "dataset": "digits:n=5", "auc": 0.9, "auc_ci": [0.8, 1.0], "tpr": 0.5,
          "tpr_ci_low": 0.1, "tpr_ci_high": 0.9, "threshold": 0.98, "copy_retrieval": 1.0, "neg_similarity_p99": 0.97}
    return embedder_card(None, record, ev, "abc", "python -m membench.features.train_digits --out X")


@pytest.mark.parametrize("make,title,command", [
    (_teacher_card, "# t", "membench train --model t --out X"),
    (_classifier_card, "# digits-classifier", "membench train-classifier --out X"),
    (_embedder_card, "# digits-embedder", "python -m membench.features.train_digits --out X"),
])
def test_every_card_has_the_one_layout(make, title, command):
    text = make()
    assert text.startswith(title + "\n") and "| field | value |" in text and "`abc`" in text
    rebuild = text.index("## Rebuild")
    assert text.index(command) > rebuild and text.index(REPRODUCIBILITY) > rebuild
    assert text.count("## Rebuild") == 1
