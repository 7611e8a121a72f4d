"""Case studies: the best checkpoint loads (or says what to run), predictions and attention match the
model's, pairs of a sentence are gathered, entity search is case-insensitive; the explorer widget
draws its first case at once and every control redraws it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import base64
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from tests.factories import TINY, handmade_instance
from vmhan_lib.analysis.case_study import CaseStudyExplorer
from vmhan_lib.analysis.case_study_widget import ExplorerWidget, explorer_widget, figure_png
from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.model.vmhan import build_model
from vmhan_lib.identity import digest
from vmhan_lib.train.checkpoints import MissingCheckpointError
from vmhan_lib.train.jobs import job_identity

CONFIG = TINY
LABELS = ("None", "/per/per/peer", "/per/org/member_of", "/misc/loc/held_on")
SENTENCE = ("Alice", "met", "Bob", "at", "Acme")


def _instances() -> list[Instance]:
    alice, bob, acme = Entity("Alice", 0, 1), Entity("Bob", 2, 3), Entity("Acme", 4, 5)
    return [
        Instance(0, SENTENCE, alice, bob, "a.jpg", "/per/per/peer"),
        Instance(1, SENTENCE, alice, acme, "a.jpg", "/per/org/member_of"),
        Instance(2, ("Expo", "in", "Dubai"), Entity("Expo", 0, 1), Entity("Dubai", 2, 3), "b.jpg", "/misc/loc/held_on"),
        Instance(3, SENTENCE, bob, acme, "a.jpg", "None"),
    ]


def _nodes(count: int) -> list[InstanceNodes]:
    generator = torch.Generator().manual_seed(1)
    return [
        handmade_instance(["h", "t", "span"][: 2 + i % 2], ["<image>", "obj", "llm"][: 0 if i == 2 else 3],
                          n_objects=0 if i == 2 else 1, generator=generator)  # instance 2 has no image: padded
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def explorer() -> CaseStudyExplorer:
    torch.manual_seed(0)
    model = build_model(CONFIG)
    captions = {"blip": {"a.jpg": "two people", "b.jpg": ""}, "qwen": {"a.jpg": "a meeting", "b.jpg": "a fair"}}
    return CaseStudyExplorer(model, CONFIG, _instances(), _nodes(4), LABELS, captions, {"a.jpg": Path("/img/a.jpg")})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_explorer_refuses_a_missing_or_old_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(MissingCheckpointError, match="no checkpoint at"):
        CaseStudyExplorer.from_checkpoint(tmp_path / "best.pt")
    torch.save({"digest": "x", "config": {"model": {}}, "model": {}}, tmp_path / "old.pt")
    with pytest.raises(MissingCheckpointError, match="older version of the workbook"):
        CaseStudyExplorer.from_checkpoint(tmp_path / "old.pt")


def test_explain_gathers_the_pair_its_sentence_and_the_model_outputs(explorer: CaseStudyExplorer) -> None:
    case = explorer.explain(1)
    assert (case.index, case.head, case.tail, case.gold) == (1, "Alice", "Acme", "/per/org/member_of")
    assert case.marked_sentence == "[h: Alice] met Bob at [t: Acme]"
    assert [(p.position, p.head, p.tail, p.gold) for p in case.pairs] == [
        (0, "Alice", "Bob", "/per/per/peer"), (1, "Alice", "Acme", "/per/org/member_of"), (3, "Bob", "Acme", "None")]
    assert case.captions == {"blip": "two people", "qwen": "a meeting"} and case.image_path == Path("/img/a.jpg")
    alone = collate_hypergraphs([explorer.nodes[1]], CONFIG.hypergraph)
    with torch.no_grad():
        output = explorer.model(alone, return_attention=True)
    expected = dict(zip(LABELS, output.logits.softmax(-1)[0].tolist()))
    assert case.probabilities == pytest.approx(expected, abs=1e-6)  # batched prediction == alone
    assert list(case.probabilities) == sorted(expected, key=lambda k: -expected[k])
    assert case.predicted == max(expected, key=expected.get)
    assert (case.num_layers, case.num_heads) == (CONFIG.num_layers, CONFIG.heads)
    for mine, model_weights in zip(case.attention, output.attention):
        torch.testing.assert_close(mine.edge_from_nodes, model_weights.edge_from_nodes)
        torch.testing.assert_close(mine.node_from_edges, model_weights.node_from_edges)
    assert "pair: **Alice** -> **Acme**" in case.summary_markdown()
    table = case.pairs_table()
    assert table[""].tolist() == ["", ">", ""] and table["gold"].tolist() == ["/per/per/peer", "/per/org/member_of", "None"]
    assert len(case.figure(layer=-1, head=1).axes) == 3


def test_instance_without_image_or_sample_file(explorer: CaseStudyExplorer) -> None:
    case = explorer.explain(2)
    assert case.image_path is None and case.captions["blip"] == ""
    assert [p.position for p in case.pairs] == [2]
    assert "not among the sample images" in case.summary_markdown()
    with pytest.raises(IndexError, match="outside the 4"):
        explorer.explain(4)


def test_search_and_widget_options(explorer: CaseStudyExplorer) -> None:
    assert explorer.search("ACME") == [1, 3]
    assert explorer.search("bo") == [0, 3]
    assert explorer.search("nobody") == []
    assert [position for _, position in explorer.sentence_options()] == [0, 2]
    assert [position for _, position in explorer.sentence_options("dubai")] == [2]
    assert explorer.sentence_options("dubai")[0][0].startswith("#2 (1 pair) Expo in Dubai")
    assert [position for _, position in explorer.pair_options(3)] == [0, 1, 3]
    assert explorer.examples_with_several_pairs(count=2) == [0]
    assert explorer.examples_with_several_pairs(min_pairs=1) == [0, 2]
    assert explorer.examples_with_several_pairs(min_pairs=4) == []


def test_models_without_attention_still_explain() -> None:
    config = replace(CONFIG, encoder="none")
    explorer = CaseStudyExplorer(build_model(config), config, _instances(), _nodes(4), LABELS, {}, {})
    case = explorer.explain(0)
    assert case.attention == [] and case.num_heads == 0
    assert len(case.figure().axes) == 1


@pytest.fixture
def widget_explorer(tmp_path: Path) -> CaseStudyExplorer:
    """The explorer of the handmade sentences, with a real image file for ``a.jpg`` (a PNG)."""
    image = tmp_path / "a.png"
    plt.imsave(image, torch.zeros(4, 4, 3).numpy())
    torch.manual_seed(0)
    return CaseStudyExplorer(build_model(CONFIG), CONFIG, _instances(), _nodes(4), LABELS,
                             {"blip": {"a.jpg": "two people"}}, {"a.jpg": image})


def _shown_pair(shown: ExplorerWidget) -> str:
    """The markdown summary the explorer's view holds (its first output)."""
    return shown.view.outputs[0]["data"]["text/markdown"]


def _figure_bytes(shown: ExplorerWidget) -> bytes:
    """The PNG of the attention figure the explorer's view holds (its last output)."""
    return base64.b64decode(shown.view.outputs[-1]["data"]["image/png"])


def test_explorer_widget_draws_the_first_case_before_it_is_shown(widget_explorer: CaseStudyExplorer) -> None:
    shown = explorer_widget(widget_explorer)
    assert shown.sentence.value == 0 and shown.pair.value == 0
    assert [position for _, position in shown.pair.options] == [0, 1, 3]
    assert "pair: **Alice** -> **Bob**" in _shown_pair(shown)
    assert _figure_bytes(shown).startswith(b"\x89PNG")
    assert (shown.layer.value, shown.layer.max, shown.head.value, shown.head.max) == (
        CONFIG.num_layers, CONFIG.num_layers, 1, CONFIG.heads)
    assert shown.box.children[-1] is shown.view and "vmhan-explorer" in shown.box._dom_classes
    image = shown.view.outputs[1]  # the image of the sentence, shown narrow
    assert base64.b64decode(image["data"]["image/png"]).startswith(b"\x89PNG")
    assert image["metadata"] == {"image/png": {"width": 360}}
    html = shown.view.outputs[2]["data"]["text/html"]  # the pairs table
    assert html.count("<tr") == 4 and html.count("<td>Acme</td>") == 2  # header and three pairs


def test_explorer_widget_search_narrows_and_controls_redraw(widget_explorer: CaseStudyExplorer) -> None:
    explorer = widget_explorer
    shown = explorer_widget(explorer)
    shown.pair.value = 1
    assert "pair: **Alice** -> **Acme**" in _shown_pair(shown)
    shown.search.value = "ACME"  # the selected sentence still matches: sentence and pair are kept
    assert [p for _, p in shown.sentence.options] == [0] and (shown.sentence.value, shown.pair.value) == (0, 1)
    shown.search.value = "dubai"
    assert [p for _, p in shown.sentence.options] == [2] and shown.pair.value == 2
    assert "pair: **Expo** -> **Dubai**" in _shown_pair(shown)
    assert len(shown.view.outputs) == 3  # no image at hand for b.jpg: summary, pairs, figure
    shown.search.value = "nobody"
    assert shown.sentence.options == () and shown.pair.value is None
    assert "no sentence has an entity matching 'nobody'" in _shown_pair(shown)
    shown.search.value = ""  # nothing was selected: the first sentence and its first pair again
    assert [p for _, p in shown.sentence.options] == [0, 2] and (shown.sentence.value, shown.pair.value) == (0, 0)
    shown.sentence.value = 2
    assert shown.pair.value == 2 and "pair: **Expo** -> **Dubai**" in _shown_pair(shown)
    shown.sentence.value = 0
    assert shown.pair.value == 0 and "pair: **Alice** -> **Bob**" in _shown_pair(shown)
    before = _figure_bytes(shown)
    shown.head.value = 2
    after = _figure_bytes(shown)
    assert after != before and after == figure_png(explorer.explain(0), CONFIG.num_layers - 1, 1)
    shown.layer.value = 1
    assert _figure_bytes(shown) == figure_png(explorer.explain(0), 0, 1)


def _bundled(tmp_path: Path) -> tuple[Path, CaseStudyExplorer, dict, Path]:
    """An explorer over the tiny fixture's test split, its bundle, and a run record that agrees."""
    from tests.conftest import write_tiny_mnre
    from vmhan_lib.config import run_config
    from vmhan_lib.config_tree import to_dict
    from vmhan_lib.data.captions import CAPTIONERS
    from vmhan_lib.data.mnre import load_mnre
    from vmhan_lib.train.records import Prediction, write_run

    root = write_tiny_mnre(tmp_path / "mnre")
    for name in CAPTIONERS:  # the explorer shows every captioner's caption
        for split in ("train", "val", "test"):
            (root / "captions" / f"{name}_{split}.txt").write_bytes((root / "captions" / f"qwen_{split}.txt").read_bytes())
    instances = load_mnre(root, "test")
    torch.manual_seed(0)
    explorer = CaseStudyExplorer(build_model(CONFIG), CONFIG, instances, _nodes(len(instances)), LABELS, {}, {})
    run = run_config("tiny", str(root), {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen"})
    checkpoint = {"config": {"model": to_dict(CONFIG), "run": run.to_dict()}}
    explorer.save_bundle(tmp_path / "bundle.pt", checkpoint, "tiny__vm-han-ours__seed0", "digest-of-the-run")
    run_dir = tmp_path / "run"
    write_run(run_dir, {"complete": True}, [
        Prediction(i.index, i.relation, explorer.predicted(k), tuple(explorer.probabilities[k].tolist()))
        for k, i in enumerate(instances)])
    return root, explorer, checkpoint, run_dir


def test_bundle_round_trip_gives_the_same_model_nodes_and_predictions(tmp_path: Path) -> None:
    from vmhan_lib.train.case_study_bundle import load_bundle
    from vmhan_lib.train.records import read_predictions

    root, explorer, _, run_dir = _bundled(tmp_path)
    bundle = load_bundle(tmp_path / "bundle.pt")
    assert bundle["run_id"] == "tiny__vm-han-ours__seed0" and bundle["test_indices"] == [i.index for i in explorer.instances]
    again = CaseStudyExplorer.from_bundle(bundle, None, root)
    torch.testing.assert_close(again.probabilities, explorer.probabilities)
    assert [n.visual_names for n in again.nodes] == [n.visual_names for n in explorer.nodes]
    assert again.agreement_with(read_predictions(run_dir)) == (len(explorer), pytest.approx(0.0, abs=1e-5))
    assert len(CaseStudyExplorer.from_bundle(bundle, 1, root)) == 1
    shuffled = [replace(p, predicted="/made/up") for p in read_predictions(run_dir)]
    assert again.agreement_with(shuffled)[0] == 0
    (root / "text" / "mnre_test.txt").write_text((root / "text" / "mnre_train.txt").read_text())
    with pytest.raises(Exception, match="is not the one the case-study bundle of tiny__vm-han-ours__seed0 was made from"):
        CaseStudyExplorer.from_bundle(bundle, None, root)


def test_load_explorer_uses_a_current_bundle_checks_it_and_says_when_it_cannot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import vmhan_lib.train.case_study_bundle as case_study_bundle
    from vmhan_lib.analysis.case_study import load_explorer
    from vmhan_lib.train.case_study_bundle import BundleMismatchWarning
    from vmhan_lib.config import run_config
    from vmhan_lib.train.records import read_predictions, write_run
    from vmhan_lib.train.jobs import Job

    root, explorer, checkpoint, run_dir = _bundled(tmp_path)
    config = run_config("tiny", str(root), {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen"})
    job = Job("VM-HAN (Ours)", 0)
    monkeypatch.setattr(case_study_bundle, "bundle_path", lambda config, job: tmp_path / "bundle.pt")
    monkeypatch.setattr(case_study_bundle.RunPaths, "of", classmethod(lambda cls, config: cls(tmp_path, tmp_path / "ckpt")))
    monkeypatch.setattr(case_study_bundle.RunPaths, "run_dir", lambda self, profile, job: run_dir)

    def no_checkpoint(*args, **kwargs):
        raise MissingCheckpointError("checkpoint route taken")

    monkeypatch.setattr(case_study_bundle, "ensure_best_checkpoint", no_checkpoint)
    with pytest.raises(MissingCheckpointError, match="checkpoint route taken"):  # the bundle was made for another run
        load_explorer(config, job, 2)
    assert "was made for other settings or data than the current ones" in capsys.readouterr().out

    explorer.save_bundle(tmp_path / "bundle.pt", checkpoint, run_dir.name, digest(job_identity(config, job)))
    loaded = load_explorer(config, job, 2)
    assert isinstance(loaded, CaseStudyExplorer) and len(loaded) == 2
    assert "agree with the run record in 2 (" in capsys.readouterr().out
    with pytest.raises(MissingCheckpointError):  # more than the bundle holds
        load_explorer(config, job, 50)
    assert "holds the first 2 test instances, 50 asked" in capsys.readouterr().out
    write_run(run_dir, {"complete": True}, [replace(p, predicted="None" if p.predicted != "None" else LABELS[1])
                                            for p in read_predictions(run_dir)])
    with pytest.warns(BundleMismatchWarning, match="predicts 2 of 2 explored test instances otherwise than its run record") as caught:
        load_explorer(config, job, 2)
    assert caught[0].filename == __file__  # the warning points at the code that asked for the explorer


@pytest.mark.real_data
def test_committed_cpu_bundle_agrees_with_its_committed_record(mnre_dir: Path, recwarn) -> None:
    from vmhan_lib.analysis.case_study import load_explorer
    from vmhan_lib.train.case_study_bundle import BundleMismatchWarning, bundle_path
    from vmhan_lib.config import run_config
    from vmhan_lib.train.jobs import Job

    config, job = run_config("cpu", str(mnre_dir)), Job("VM-HAN (Ours)", 0)
    assert bundle_path(config, job).is_file(), "the cpu headline run's case-study bundle is committed"
    explorer = load_explorer(config, job, 36)
    assert len(explorer) == 36 and not [w for w in recwarn if issubclass(w.category, BundleMismatchWarning)]
