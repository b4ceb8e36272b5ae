"""Trajectories: masks cover exactly the sampled tokens; JSONL is an exact round trip."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from toolgym.rollout.trajectory import Trajectory, Turn, read_jsonl, write_jsonl

ids = st.lists(st.integers(0, 50_000), max_size=6)
turns = st.builds(
    lambda p, a, o, r: Turn(action_text="x", action_ids=a, action_logprobs=[-0.5] * len(a),
                            prompt_ids=p, obs_ids=o, reward=r),
    ids, ids, ids, st.floats(-1, 1))


@given(st.lists(turns, min_size=1, max_size=4), st.floats(-1, 1), st.text(max_size=20))
def test_json_round_trip_is_exact(ts, reward, text):
    t = Trajectory(env_id="e", task_id=text, turns=ts, final_reward=reward, outcome="success",
                   timings={"env_s": 0.1}, info={"note": text})
    assert Trajectory.from_json(t.to_json()) == t


def test_loss_mask_is_one_on_action_tokens_only():
    t = Trajectory(env_id="e", task_id="t", turns=[
        Turn("a", action_ids=[10, 11], action_logprobs=[-1.0, -2.0], prompt_ids=[1, 2, 3],
             obs_ids=[4, 5]),
        # the last obs is not trained on
        Turn("b", action_ids=[12], action_logprobs=[-3.0], obs_ids=[6]),
    ])
    (s,) = t.samples()
    assert s.input_ids == [1, 2, 3, 10, 11, 4, 5, 12]
    assert s.loss_mask == [0, 0, 0, 1, 1, 0, 0, 1]
    assert s.logprobs == [0, 0, 0, -1.0, -2.0, 0, 0, -3.0]
    assert s.turn_index == [-1, -1, -1, 0, 0, -1, -1, 1]


def test_non_append_only_template_gives_one_sample_per_turn():
    t = Trajectory(env_id="e", task_id="t", turns=[
        Turn("a", action_ids=[10], action_logprobs=[-1.0], prompt_ids=[1, 2]),
        Turn("b", action_ids=[11], action_logprobs=[-1.0], prompt_ids=[1, 2, 10, 3]),
    ])
    a, b = t.samples()
    assert (a.input_ids, a.loss_mask) == ([1, 2, 10], [0, 0, 1])
    assert (b.input_ids, b.loss_mask) == ([1, 2, 10, 3, 11], [0, 0, 0, 0, 1])


def test_jsonl_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "t.jsonl"
    trajs = [
        Trajectory(env_id="e", task_id=str(i), turns=[Turn("x", [i], [0.0])]) for i in range(3)
    ]
    write_jsonl(path, trajs)
    with open(path, "a") as f:
        f.write(trajs[0].to_json()[:20])  # a writer killed mid-line
    assert [t.task_id for t in read_jsonl(path)] == ["0", "1", "2"]
    assert os.path.getsize(path) > 0


def test_turns_without_ids_are_not_trainable():
    t = Trajectory(env_id="e", task_id="t", turns=[Turn("text only")])
    assert not t.trainable


def test_jsonl_damaged_in_the_middle_keeps_every_readable_record(tmp_path, caplog):
    """A corrupt line in the middle made read_jsonl raise (a resume died with a traceback)."""
    path = tmp_path / "t.jsonl"
    trajs = [Trajectory(env_id="e", task_id=str(i), turns=[Turn("x", [i], [0.0])])
             for i in range(5)]
    write_jsonl(path, trajs[:1])
    with open(path, "ab") as f:
        f.write(b"\x00" * 64 + b"\n")  # a block of NULs a crash left
        f.write(b"\xff\xfe not json\n")  # garbage, not even UTF-8
        f.write(trajs[1].to_json()[:30].encode())  # torn, then a record glued behind it
        f.write(trajs[1].to_json().encode() + b"\n")
        f.write(b'{"env_id": "e", "turns": "nope"}\n')  # valid JSON, not a trajectory
    write_jsonl(path, trajs[2:])
    assert [t.task_id for t in read_jsonl(path)] == ["0", "1", "2", "3", "4"]
    assert "t.jsonl:2: skipping an unreadable line" in caplog.text
    assert "3 unreadable line(s) skipped (line 2, 3, 5)" in caplog.text
