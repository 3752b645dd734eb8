import json

import pytest

from unlearnkit.data import DataError, load_qa_file, load_refusals
from unlearnkit.data.splits import RealWorldBenchmark, TofuBenchmark, open_benchmark


def write_lines(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_loader_reads_every_field(tmp_path):
    p = write_lines(
        tmp_path / "f.json",
        [
            {
                "task_id": "3",
                "question": "Q?",
                "answer": "A.",
                "paraphrased_answer": "P.",
                "perturbed_answer": ["W1.", "W2."],
                "paraphrased_question": "PQ?",
                "extra": 1,
            }
        ],
    )
    (item,) = load_qa_file(p)
    assert item.task_id == 3 and item.perturbed_answers == ["W1.", "W2."]
    assert item.paraphrased_answer == "P." and item.paraphrased_question == "PQ?"


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"question": "Q"}], r"f\.json:1: missing field 'answer'"),
        ([{"question": "Q", "answer": "A"}, "{not json"], r"f\.json:2: malformed JSON"),
        ([{"question": "Q", "answer": ""}], r"f\.json:1: field 'answer' must be a non-empty"),
        ([{"question": "Q", "answer": "A", "task_id": "x"}], r"f\.json:1: field 'task_id'"),
        ([{"question": "Q", "answer": "A", "perturbed_answer": [1]}], "list of strings"),
        (["[1, 2]"], r"f\.json:1: expected a JSON object"),
    ],
)
def test_loader_errors_name_file_line_and_field(tmp_path, rows, message):
    p = write_lines(tmp_path / "f.json", rows)
    with pytest.raises(DataError, match=message):
        load_qa_file(p)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "e.json").write_text("\n")
    with pytest.raises(DataError, match="is empty"):
        load_qa_file(tmp_path / "e.json")
    with pytest.raises(DataError, match="file not found"):
        load_qa_file(tmp_path / "nope.json")


def test_refusals_from_file_and_default(tmp_path, shared_data):
    paper = load_refusals(shared_data / "idontknow.jsonl")
    n_lines = sum(
        1 for line in (shared_data / "idontknow.jsonl").read_text().splitlines() if line.strip()
    )
    assert len(paper) == n_lines and all(s.strip() for s in paper)
    own = load_refusals(None)
    assert len(own) >= 20 and set(own) != set(paper)
    (tmp_path / "r.txt").write_text("\n\n")
    with pytest.raises(DataError, match="no refusal templates"):
        load_refusals(tmp_path / "r.txt")


@pytest.mark.parametrize(
    "split, n_tasks, per_task, retain_name, retain_rows",
    [("forget01", 10, 40, "retain90", 3600), ("forget05", 10, 200, "retain50", 2000),
     ("forget10", 9, 400, "retain10", 400)],
)  # fmt: skip
def test_tofu_split_arithmetic(shared_data, split, n_tasks, per_task, retain_name, retain_rows):
    tofu = TofuBenchmark(shared_data / "tofu")
    assert tofu.task_ids(split) == list(range(1, n_tasks + 1))
    total = len(tofu.finetune_set())
    assert total == 4000
    everything = {(it.question, it.answer) for it in tofu.finetune_set()}
    for task in (1, 2, n_tasks):
        forget = tofu.forget(split, task)
        assert len(forget) == per_task
        pairs_f = {(it.question, it.answer) for it in forget}
        # a single task: retainYY plus every other task = the complement of its forget set
        alone = {(it.question, it.answer) for it in tofu.retain(split, task)}
        assert len(tofu.retain(split, task)) == retain_rows + per_task * (n_tasks - 1)
        assert alone | pairs_f == everything and not alone & pairs_f
        # continual, tasks 1..task unlearned so far: retainYY plus the tasks not yet unlearned
        retain = tofu.retain(split, task, unlearned=list(range(1, task + 1)))
        assert len(retain) == retain_rows + per_task * (n_tasks - task)
        pairs_r = {(it.question, it.answer) for it in retain}
        assert not pairs_f & pairs_r
    # task 1 alone: retain is exactly the complement of the forget set
    f1 = {(it.question, it.answer) for it in tofu.forget(split, 1)}
    r1 = {(it.question, it.answer) for it in tofu.retain(split, 1)}
    assert f1 | r1 == everything and len(f1) + len(r1) == len(everything)
    # the retain model's training set is the complement of the forget task (TOFU's retain99/95/90)
    retain_model = {(it.question, it.answer) for it in tofu.retain_model_set(split, 1)}
    assert retain_model == everything - f1 and len(retain_model) == 4000 - per_task


def test_retain_model_set_is_the_complement_of_the_forget_task(tmp_path):
    from unlearnkit.data.synth import generate_synthetic

    generate_synthetic(tmp_path, n_authors=15, questions_per_author=4, seed=0, n_tasks=10)
    bench = TofuBenchmark(tmp_path)
    everything = {(it.question, it.answer) for it in bench.finetune_set()}
    for task in bench.task_ids("forget10")[:2]:
        forget = {(it.question, it.answer) for it in bench.forget("forget10", task)}
        kept = {(it.question, it.answer) for it in bench.retain_model_set("forget10", task)}
        assert kept == everything - forget  # every author but the task's
        assert len(kept) == len(everything) - len(forget)
    # task 1: the retain set of unlearning (retain10 alone would be a single author here)
    pairs = [(it.question, it.answer) for it in bench.retain("forget10", 1)]
    assert sorted(
        (it.question, it.answer) for it in bench.retain_model_set("forget10", 1)
    ) == sorted(pairs)


def test_retain_set_excludes_unlearned_tasks_in_any_order(shared_data):
    """Continual order 3, 1: while unlearning task 1, task 3 (done) is out, task 2 is in."""
    tofu = TofuBenchmark(shared_data / "tofu")
    retain = tofu.retain("forget01", 1, unlearned=[3, 1])
    pairs = {(it.question, it.answer) for it in retain}
    for task, inside in ((1, False), (2, True), (3, False), (10, True)):
        rows = {(it.question, it.answer) for it in tofu.forget("forget01", task)}
        assert (rows <= pairs) is inside and (not (rows & pairs)) is (not inside)
    assert len(retain) == 3600 + 40 * 8


def test_tofu_eval_sets(shared_data):
    sets = TofuBenchmark(shared_data / "tofu").eval_sets("forget05", 2)
    assert {k: len(v) for k, v in sets.items()} == {
        "forget": 200, "retain": 400, "real_authors": 100, "world_facts": 117,
    }  # fmt: skip
    assert all(it.task_id == 2 and len(it.perturbed_answers) == 5 for it in sets["forget"])
    assert all(it.original_answer for it in sets["world_facts"])


def test_real_world_sets(shared_data):
    rw = open_benchmark(str(shared_data / "real_world"))
    assert isinstance(rw, RealWorldBenchmark)
    assert len(rw.forget()) == 400 and len(rw.forget(task=3)) == 20
    assert len(rw.neighbor()) == 400
    sets = rw.eval_sets()
    assert set(sets) == {"forget", "neighbor"}
    assert all(it.golden_answer for it in sets["forget"])
    names = {it.name for it in rw.forget()}
    assert not names & {it.name for it in rw.neighbor()}


def test_bad_split_task_and_duplicates(shared_data, tmp_path):
    tofu = TofuBenchmark(shared_data / "tofu")
    with pytest.raises(DataError, match="unknown split 'forget02'.*forget01"):
        tofu.forget("forget02")
    with pytest.raises(DataError, match="no rows with task_id 11"):
        tofu.forget("forget01", 11)
    # a forget row duplicated into the retain file is caught, naming the question
    root = tmp_path / "bad"
    root.mkdir()
    write_lines(root / "forget01.json", [{"question": "Q1", "answer": "A1", "task_id": 1}])
    write_lines(root / "retain90.json", [{"question": "Q1", "answer": "A1"}])
    with pytest.raises(DataError, match="both the forget and retain sets: 'Q1'"):
        TofuBenchmark(root).retain("forget01", 1)


def test_open_benchmark_errors(tmp_path):
    with pytest.raises(DataError, match="unknown benchmark 'nope'"):
        open_benchmark("nope")
    # offline the hub path fails with a message that says how to use a folder instead
    with pytest.raises(DataError, match="Point --benchmark at a folder"):
        open_benchmark("locuslab/TOFU-does-not-exist")
