"""The search environment: answer scoring by hand-worked values, the image's corpus code, and
tools, tasks and episodes on real Docker sandboxes of the ``toolgym/search`` image."""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import sys
from pathlib import Path

import pytest

import toolgym.envs  # noqa: F401 - registers the envs
from toolgym.envs import Outcome, Task, make_async
from toolgym.envs.checker import run_actions
from toolgym.envs.search import (
    AnswerVerifier,
    exact_match,
    final_answer,
    hack_probes,
    normalize,
    open_tool,
    oracle_actions,
    search_tasks,
    search_tool,
    token_f1,
    wrong_actions,
)
from toolgym.envs.search.demos import open_call, search_call
from toolgym.envs.search.env import SearchEnv, search_sandbox
from toolgym.envs.search.tool import format_error, format_page, format_results
from toolgym.envs.search.verifier import MAX_ANSWER_CHARS
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.sandbox.pool import PoolConfig, SandboxPool
from toolgym.tools import ToolContext

ENV_ID = "toolgym/Search-v0"
IMAGE_DIR = Path(__file__).resolve().parents[2] / "docker" / "search"
DOG = ("a member of the genus Canis (probably descended from the common wolf) that has been "
       "domesticated by man since prehistoric times")
KINDS = {"define", "hypernym", "part_of", "antonym", "hypernym2", "part_kind"}


def image_module(name: str):
    """Import a stdlib-only module of the image (``docker/search/<name>.py``) on the host."""
    spec = importlib.util.spec_from_file_location(f"toolgym_search_image_{name}",
                                                  IMAGE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def task(answers: list[str], wrong: str = "cat") -> Task:
    hops = [{"query": "q", "doc_id": "dog", "page": 1}]
    return Task("t", "What is a dog a kind of?", data={"answers": answers, "wrong": wrong,
                                                        "hops": hops})


async def reward(answer: str, answers: list[str] | None = None) -> float:
    return (await AnswerVerifier().score(None, task(answers or ["canine", "canid"]), answer)).reward


# ------------------------------------------------------------------ scoring (host)


@pytest.mark.parametrize("text, normal", [
    ("The  Domestic-Dog!", "domesticdog"), ("an apple a day", "apple day"),
    ("Canis familiaris.", "canis familiaris"), ("  A\tcat \n", "cat"), ("theatre", "theatre"),
    ("", ""), ("(a) the an", ""),
])
def test_normalize_is_squads(text, normal):
    assert normalize(text) == normal


@pytest.mark.parametrize("prediction, gold, em, f1", [
    ("canine", "canine", True, 1.0),
    ("The Canine.", "canine", True, 1.0),
    ("canines", "canine", False, 0.0),
    ("common grape vine", "grape", False, 0.5),          # P 1/3, R 1 -> 2PR/(P+R) = 0.5
    ("the cat sat", "a cat sat down", False, 0.8),       # P 2/2, R 2/3 -> 0.8
    ("cat cat", "cat", False, 2 / 3),                    # P 1/2, R 1 -> 2/3
    ("dog", "", False, 0.0),
    ("", "dog", False, 0.0),
])
def test_exact_match_and_token_f1(prediction, gold, em, f1):
    assert exact_match(prediction, gold) is em
    assert token_f1(prediction, gold) == pytest.approx(f1)


@pytest.mark.parametrize("message, answer", [
    ("canine", "canine"),
    ("It says canine.\nAnswer: canine\n", "canine"),
    ("answer: dog\nANSWER:  canid  \nthanks", "canid"),
    ("Answer:", ""),
    ("", ""),
])
def test_final_answer_is_after_the_last_marker(message, answer):
    assert final_answer(message) == answer


@pytest.mark.parametrize("message, expected", [
    ("canine", 1.0), ("Canid", 1.0), ("Answer: the canine.", 1.0),
    ("I read it.\nAnswer: canid", 1.0),
    ("canine, canid", 0.0), ("canine or wolf", 0.0), ("It is a canine.", 0.0), ("canines", 0.0),
    ("Answer: canine\nAnswer: wolf", 0.0), ("", 0.0), ("canine " * 40, 0.0),
    ("canine" + " ." * (MAX_ANSWER_CHARS // 2), 0.0),  # would match, but is too long
])
async def test_verifier_reward_is_exact_match(message, expected):
    assert await reward(message) == expected


async def test_verifier_reports_f1_and_refuses_a_task_without_answers():
    score = await AnswerVerifier().score(None, task(["common grape vine", "vinifera"]), "grape")
    assert (score.reward, score.passed, score.details["f1"]) == (0.0, False, 0.5)
    with pytest.raises(ValueError, match="no usable gold"):
        await AnswerVerifier().score(None, task([]), "canine")


async def test_every_answer_only_probe_scores_zero():
    for answers in (["canine", "canid"], ["Vitis vinifera"], ["unable"]):
        t = task(answers, wrong="dog")
        for name, actions in hack_probes(t).items():
            final = actions[-1]
            if "<tool_call>" in final:
                continue
            score = await AnswerVerifier().score(None, t, final)
            assert score.reward == 0.0, name
        assert (await AnswerVerifier().score(None, t, oracle_actions(t)[-1])).reward == 1.0
        assert (await AnswerVerifier().score(None, t, wrong_actions(t)[-1])).reward == 0.0


def test_observation_formats():
    hit = {"id": "dog", "title": "dog", "score": 3.0, "snippet": "#1 (noun) a canine"}
    assert format_results("canine", {"results": [hit, hit]}).splitlines() == [
        "1. dog (title: dog)", "   #1 (noun) a canine", "2. dog (title: dog)",
        "   #1 (noun) a canine", "[2 results for 'canine'; read one with open(doc_id)]"]
    assert format_results("zzz", {"results": []}).startswith("No documents match 'zzz'")
    last = {"id": "dog", "title": "dog", "page": 2, "pages": 2, "text": "x"}
    assert format_page(last) == "[dog] page 2 of 2\nx"
    error = format_error({"error": "no document with id 'dgo'", "suggestions": ["dog", "ago"]})
    assert error == ("Error: no document with id 'dgo'. Close ids: dog, ago. "
                     "Use search(query) to find document ids.")


def test_oracle_follows_the_hops():
    t = Task("t", "q", data={"answers": ["interact"], "wrong": "communicate", "hops": [
        {"query": "communicate the intended meaning", "doc_id": "come_across", "page": 1},
        {"doc_id": "communicate", "page": 2}]})
    assert oracle_actions(t) == [search_call("communicate the intended meaning"),
                                 open_call("come_across"), open_call("communicate", 2),
                                 "interact"]


# ------------------------------------------------------------ the image's code (host)


def test_pages_cut_at_line_ends_and_keep_every_character():
    searchd = image_module("searchd")
    text = "\n".join(f"line {i} " + "x" * (i * 7 % 50) for i in range(200))
    pages = searchd.pages(text, 300)
    assert "\n".join(pages) == text
    assert all(len(p) <= 300 for p in pages) and len(pages) > 10
    assert searchd.pages("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert searchd.pages("") == [""]
    assert searchd.normalize_id("  Domestic  Dog ") == "domestic_dog"


def test_wordnet_lines_parse():
    wordnet = image_module("wordnet")
    line = ("02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 002 @ 02083346 n 0000 "
            "#m 02083863 n 0000 | a member of the genus Canis; \"the dog barked all night\"  ")
    s = wordnet.parse_data_line(line)
    assert (s.key, s.lemmas, s.names()) == (
        "n:02084071", ["dog", "domestic_dog", "canis_familiaris"],
        ["dog", "domestic dog", "Canis familiaris"])
    assert (s.definition, s.examples) == ("a member of the genus Canis",
                                          ["the dog barked all night"])
    assert s.targets("@") == ["n:02083346"] and s.targets("#m") == ["n:02083863"]
    satellite = wordnet.parse_data_line("00003356 00 s 01 emergent(a) 0 000 | coming into view")
    assert (satellite.key, satellite.words) == ("a:00003356", ["emergent"])


# ------------------------------------------------------------------- Docker


@pytest.fixture(scope="module")
def search_image(docker_available) -> str:
    """An up-to-date ``toolgym/search`` image (built when missing: about 2 min)."""
    from toolgym.sandbox.images import build_image

    return build_image("search")


@pytest.fixture
async def sandbox(search_image):
    sb = await DockerSandbox.acreate(SandboxSpec(image=search_image))
    yield sb
    await sb.aclose()


@pytest.mark.docker
def test_tasks_come_out_of_the_image_with_checked_answers(search_image):
    source = search_tasks(search_image)
    assert len(source) >= 300
    kinds = collections.Counter(t.metadata["kind"] for t in source)
    assert set(kinds) == KINDS and min(kinds.values()) >= 50
    train, test = source.split("train"), source.split("test")
    assert len(train) + len(test) == len(source) and 0.1 < len(test) / len(source) < 0.3
    assert not {t.id for t in train} & {t.id for t in test}
    assert search_tasks(search_image).ids() == source.ids()  # deterministic
    for t in source:
        assert t.data["answers"] and all(normalize(a) for a in t.data["answers"])
        assert not any(exact_match(t.data["wrong"], a) for a in t.data["answers"])
        assert len(t.data["hops"]) == t.metadata["hops"] == (2 if t.metadata["kind"] in (
            "hypernym2", "part_kind") else 1)
        assert not any(normalize(a) in normalize(t.prompt).split() for a in t.data["answers"])


@pytest.mark.docker
async def test_search_returns_the_gold_document(sandbox):
    search = search_tool()
    result = await search(ToolContext(sandbox), query=DOG, k=5)
    assert not result.error
    ids = [line.split(". ", 1)[1].split(" ")[0] for line in result.text.splitlines()
           if line[:1].isdigit()]
    assert len(ids) == 5 and {"domestic_dog", "canis_familiaris"} <= set(ids[:2])
    assert "domesticated by man since prehistoric times" in result.text
    none = await search(ToolContext(sandbox), query="qqqzzzxxy vvvwwwkk", k=3)
    assert none.text.startswith("No documents match")
    bad = await search(ToolContext(sandbox), query="dog", k=0)
    assert bad.error and "between 1 and 20" in bad.text


@pytest.mark.docker
async def test_open_pages_a_long_document(sandbox):
    open_doc = open_tool()
    first = await open_doc(ToolContext(sandbox), doc_id="break")
    header = first.text.splitlines()[0]
    assert header.startswith("[break] page 1 of ")
    assert '[more: open("break", page=2)]' in first.text
    pages = int(header.rsplit(" ", 1)[1])
    assert pages >= 5 and "#1 (noun) some abrupt occurrence" in first.text
    last = await open_doc(ToolContext(sandbox), doc_id="break", page=pages)
    assert "#75 (verb)" in last.text and "[more:" not in last.text
    texts = [first.text] + [(await open_doc(ToolContext(sandbox), doc_id="break", page=p)).text
                            for p in range(2, pages + 1)]
    senses = [line for text in texts for line in text.splitlines() if line.startswith("#")]
    assert [s.split(" ")[0] for s in senses] == [f"#{i}" for i in range(1, 76)]
    beyond = await open_doc(ToolContext(sandbox), doc_id="break", page=pages + 1)
    assert beyond.error and f"has {pages} page(s)" in beyond.text
    same = await open_doc(ToolContext(sandbox), doc_id="  Domestic Dog ")
    assert same.text.startswith("[domestic_dog] page 1 of 1")


@pytest.mark.docker
async def test_unknown_doc_id_is_an_observation(search_image):
    env = SearchEnv(sandbox=SandboxSpec(image=search_image))
    try:
        await env.areset(seed=0)
        obs, r, terminated, truncated, info = await env.astep(open_call("dgo"))
        assert obs.startswith("Error: no document with id 'dgo'. Close ids: ")
        assert "dog" in obs and not terminated and not truncated and r == 0.0
        obs, *_ = await env.astep(open_call("dog", page=99))
        assert "page 99 does not exist" in obs
        obs, *_ = await env.astep(open_call("../../etc/passwd"))
        assert obs.startswith("Error: no document")
    finally:
        await env.aclose()


@pytest.mark.docker
async def test_a_killed_index_server_is_restarted(sandbox):
    search = search_tool()
    assert "domestic_dog" in (await search(ToolContext(sandbox), query=DOG)).text
    killed = await sandbox.aexec("pkill -9 -f '[s]earchd.py serve'; sleep 0.2; "
                                 "pgrep -fc '[s]earchd.py serve' || true")
    assert killed.stdout.strip() == "0"
    assert "domestic_dog" in (await search(ToolContext(sandbox), query=DOG)).text
    await sandbox.areset()  # kills the server and wipes its socket
    assert "domestic_dog" in (await search(ToolContext(sandbox), query=DOG)).text


@pytest.mark.docker
async def test_the_resident_index_server_survives_the_agent_and_resets(search_image):
    sandbox = await DockerSandbox.acreate(search_sandbox(search_image))
    try:
        up = await sandbox.aexec("for i in $(seq 300); do test -S /run/toolgym/sock && exit 0; "
                                 "sleep 0.1; done; exit 1")
        assert up.exit_code == 0, "the service never opened its socket"
        search = search_tool()
        own_servers = "pgrep -u 1000 -fc '[s]earchd.py serve' || true"
        attack = await sandbox.aexec("pkill -9 -f '[s]earchd.py serve'; rm -f /run/toolgym/sock; "
                                     "touch /run/toolgym/x 2>&1; pgrep -c -u 65534 -x python3")
        assert "Permission denied" in attack.stdout or "Read-only" in attack.stdout
        assert attack.stdout.strip().endswith("1")  # the service's server, still there
        for _ in range(2):  # an episode, a reset, the next episode
            assert "domestic_dog" in (await search(ToolContext(sandbox), query=DOG)).text
            assert (await sandbox.aexec(own_servers)).stdout.strip() == "0"
            await sandbox.areset()
    finally:
        await sandbox.aclose()


@pytest.mark.docker
async def test_concurrent_first_searches_start_one_server(sandbox):
    search = search_tool()
    results = await asyncio.gather(*(search(ToolContext(sandbox), query=DOG) for _ in range(4)))
    assert all("domestic_dog" in r.text for r in results)
    count = await sandbox.aexec("pgrep -fc '[s]earchd.py serve'")
    assert count.stdout.strip() == "1"


@pytest.mark.docker
async def test_multi_hop_oracle_reads_the_link_then_the_answer(search_image):
    env = SearchEnv(sandbox=SandboxSpec(image=search_image))
    try:
        two_hop = [t for t in env.tasks if t.metadata["kind"] == "hypernym2"][:3]
        for t in two_hop:
            r, outcome, obs = await run_actions(env, env.reference_actions(t),
                                                options={"task_id": t.id})
            assert (r, outcome) == (1.0, Outcome.SUCCESS)
            first, second = t.data["hops"]
            assert obs[1].startswith("1. ") and first["query"] == t.prompt.split('"')[1]
            assert f"[{second['doc_id']} #" in obs[2]  # the first page links to the second
            assert any(a.lower() in obs[3].lower() for a in t.data["answers"])
    finally:
        await env.aclose()


@pytest.mark.docker
async def test_oracle_succeeds_and_wrong_agent_fails_on_every_kind(search_image):
    async with SandboxPool(SandboxSpec(image=search_image), PoolConfig(size=4, max_size=4)) as pool:
        envs = [SearchEnv(provider=pool) for _ in range(4)]
        by_kind: dict[str, list[Task]] = collections.defaultdict(list)
        for t in envs[0].tasks:
            by_kind[t.metadata["kind"]].append(t)
        queue = [t for kind in sorted(by_kind) for t in by_kind[kind][:4]]
        results: list[tuple[str, float, float]] = []

        async def worker(env: SearchEnv) -> None:
            while queue:
                t = queue.pop()
                good, outcome, _ = await run_actions(env, env.reference_actions(t),
                                                     options={"task_id": t.id})
                bad, _, _ = await run_actions(env, env.reference_actions(t, "wrong"),
                                              options={"task_id": t.id})
                results.append((t.id, good, bad))
            await env.aclose()

        await asyncio.gather(*(worker(e) for e in envs))
    assert len(results) == 24
    assert [r for r in results if r[1:] != (1.0, 0.0)] == []


@pytest.mark.docker
async def test_turn_budget_is_configurable_to_40(search_image):
    env = make_async(ENV_ID, max_turns=40, sandbox=SandboxSpec(image=search_image))
    try:
        await env.areset(seed=1)
        for turn in range(1, 41):
            _, _, terminated, truncated, _ = await env.astep(open_call("dog", page=1 + turn % 2))
            assert not terminated and truncated == (turn == 40)
    finally:
        await env.aclose()
