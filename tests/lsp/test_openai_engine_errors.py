"""The `openai` engine against a scripted loopback server: the request it sends, streaming,
stop rules and cancellation closing the stream, and every failure as one message (500s, stalls,
garbage, refused connections), with and without the local fallback."""

from __future__ import annotations

import threading
import time

import pytest
from repolsp.models.prompt import LEFT_TO_RIGHT, template_for
from repolsp.server.config import Config
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.engine.fake import FakeEngine
from repolsp.server.engine.openai import OpenAIEngine, engine_from_config, remote_template

from tests.lsp.clients import server_env
from tests.lsp.openai_servers import (
    LspSession,
    StubServer,
    endless_reply,
    free_port,
    raw_reply,
    stall_reply,
    status_reply,
    stream_reply,
)


@pytest.fixture
def stub():
    server = StubServer()
    yield server
    server.close()


def _engine(endpoint: str, problems: list | None = None, **kwargs) -> OpenAIEngine:
    on_problem = problems.append if problems is not None else None
    return OpenAIEngine(endpoint, "team-model", timeout_s=kwargs.pop("timeout_s", 5), on_problem=on_problem, **kwargs)


def test_sends_the_prompt_streams_the_answer_and_cuts_at_stop_strings(stub, monkeypatch):
    stub.reply = stream_reply(["a", " +", " b", "<|endoftext|>", "junk"])
    monkeypatch.setenv("TEAM_KEY", "s3cret")
    config = Config(engine="openai", endpoint=stub.endpoint, remote_model="Qwen/Qwen2.5-Coder-7B",
                    api_key_env="TEAM_KEY")
    engine = engine_from_config(config)
    stops = ("<|endoftext|>", "<|file_sep|>", "<|fim_pad|>", "\n\n\n", "<stop5>")
    result = engine.generate(GenerationRequest("<|fim_prefix|>def f(a, b):\n    return ", max_new_tokens=9,
                                               temperature=0.0, stop=stops))
    assert (result.text, result.finish_reason) == ("a + b", "stop")
    assert engine.template.name == "qwen2.5-coder"  # from the model's name
    request = stub.requests[0]
    assert request["path"] == "/v1/completions"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    body = request["body"]
    assert body["model"] == "Qwen/Qwen2.5-Coder-7B" and body["stream"] is True
    assert body["prompt"].startswith("<|fim_prefix|>def f") and body["max_tokens"] == 9
    assert body["stop"] == list(stops[:4])  # OpenAI takes four; the fifth is applied here


def test_stream_pieces_and_the_servers_end_token(stub):
    stub.reply = stream_reply(["x", " = ", "1"], finish="stop")
    engine = _engine(stub.endpoint)
    assert list(engine.generate_stream(GenerationRequest("p"))) == ["x", " = ", "1"]
    result = engine.generate(GenerationRequest("p"))
    assert (result.text, result.finish_reason, result.new_tokens) == ("x = 1", "eos", 3)
    stub.reply = stream_reply(["x"], finish="length")
    assert engine.generate(GenerationRequest("p")).finish_reason == "length"


@pytest.mark.parametrize("how", ["should_stop", "cancel"])
def test_a_stop_rule_or_cancel_closes_the_stream(stub, how):
    stub.reply = endless_reply(delay_s=0.02)
    engine = _engine(stub.endpoint)
    cancel = threading.Event()
    request = GenerationRequest("p", max_new_tokens=2000)
    if how == "should_stop":
        request.should_stop = lambda text: text.count(" x") >= 5
    else:
        threading.Timer(0.3, cancel.set).start()
    started = time.perf_counter()
    result = engine.generate(request, cancel)
    took_s = time.perf_counter() - started
    assert stub.dropped.wait(5), "the server kept streaming to nobody"
    if how == "should_stop":
        assert (result.text, result.finish_reason) == (" x0 x1 x2 x3 x4", "stop")
    else:
        assert result.finish_reason == "cancelled" and took_s < 2


def test_cancel_while_the_server_says_nothing_returns_at_once(stub):
    stub.reply = stall_reply(30)
    engine = _engine(stub.endpoint, timeout_s=30)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.perf_counter()
    result = engine.generate(GenerationRequest("p"), cancel)
    assert result.finish_reason == "cancelled" and result.text == "a"
    assert time.perf_counter() - started < 2
    assert stub.dropped.wait(5)


@pytest.mark.parametrize("reply,expected", [
    (status_reply(500, b'{"error": {"message": "model overloaded", "code": 500}}'),
     "answered HTTP 500: model overloaded"),
    (status_reply(404, b'{"detail": "Not Found"}'), "answered HTTP 404: Not Found"),
    (status_reply(401, b"no key", "text/plain"), "answered HTTP 401: no key"),
    (stall_reply(10), "did not finish within 1 s"),
    (raw_reply(b"SSH-2.0-OpenSSH_9.6\r\n"), "answered something that is not HTTP"),
    (status_reply(200, b"<html>proxy login</html>", "text/html"), "not an OpenAI completion ('<html>"),
    (stream_reply(["a"], finish="", done=False), "ended the stream without [DONE]"),
    (status_reply(200, b'data: {"error": {"message": "context too long"}}\n\n', "text/event-stream"),
     "reported an error: context too long"),
], ids=["500", "404", "401-text", "slow-stream", "not-http", "html", "cut-stream", "error-event"])
def test_failures_are_one_line_and_no_completion(stub, reply, expected):
    stub.reply = reply
    problems: list[str] = []
    engine = _engine(stub.endpoint, problems, timeout_s=1)
    result = engine.generate(GenerationRequest("p"))
    assert (result.finish_reason, result.text) == ("error", "")
    assert len(problems) == 1 and expected in problems[0], problems
    assert stub.endpoint in problems[0] and "\n" not in problems[0]


def test_unreachable_told_once_then_recovery_told(stub):
    problems: list[str] = []
    port = free_port()
    engine = _engine(f"http://127.0.0.1:{port}/v1", problems)
    for _ in range(3):
        assert engine.generate(GenerationRequest("p")).finish_reason == "error"
    assert problems == [(f"the inference server http://127.0.0.1:{port}/v1 is unreachable "
                         "(connection refused); no completions until it answers")]
    engine.port = stub.port  # the server comes up
    assert engine.generate(GenerationRequest("p")).text == "return 42\n"
    assert problems[-1].endswith("answers again") and len(problems) == 2
    assert engine.stats()["remoteErrors"] == 3


def test_fallback_answers_while_the_endpoint_is_down(stub, monkeypatch):
    problems: list[str] = []
    local = FakeEngine("local_answer\n", model_name="gemma3-270m")
    local_template = (template_for("repolsp-gemma3"), 512)
    engine = _engine(f"http://127.0.0.1:{free_port()}/v1", problems, fallback=local,
                     fallback_template=local_template, template=template_for("qwen2.5-coder"))
    assert engine.serving_template() == (template_for("qwen2.5-coder"), None)
    # The prompt was rendered for the remote model: it cannot go to the local one.
    failed = engine.generate(GenerationRequest("<|fim_prefix|>p", template="qwen2.5-coder"))
    assert failed.finish_reason == "error" and local.calls == 0
    assert "the local model answers" in problems[0]
    # Until the retry time the next prompts are rendered for, and answered by, the local model.
    assert engine.serving_template() == local_template
    assert engine.count_tokens("a b c") == local.count_tokens("a b c")
    answered = engine.generate(GenerationRequest("<unused0>p", template="repolsp-gemma3"))
    assert answered.text == "local_answer\n" and local.prompts == ["<unused0>p"]
    # Then the endpoint is tried again.
    monkeypatch.setattr(engine, "_down_until", 0.0)
    engine.port = stub.port
    assert engine.serving_template()[0].name == "qwen2.5-coder"
    assert engine.generate(GenerationRequest("p", template="qwen2.5-coder")).text == "return 42\n"
    assert engine.stats()["fallbackRequests"] == 1


def test_fallback_with_the_same_template_answers_the_failed_request_itself():
    local = FakeEngine("local\n")
    engine = _engine(f"http://127.0.0.1:{free_port()}/v1", [], fallback=local,
                     fallback_template=(LEFT_TO_RIGHT, 512))
    result = engine.generate(GenerationRequest("def f():\n", template="left-to-right"))
    assert result.text == "local\n" and "unreachable" in result.extra["error"]


@pytest.mark.parametrize("fim_template,model,expected", [
    ("", "Qwen/Qwen2.5-Coder-7B", "qwen2.5-coder"),
    ("", "deepseek-ai/deepseek-coder-6.7b-base", "deepseek-coder"),
    ("", "bigcode/starcoder2-15b", "starcoder"),
    ("", "google/codegemma-7b", "codegemma"),
    ("", "gemma3-270m", "left-to-right"),
    ("codellama", "my-finetune", "codellama"),
], ids=["qwen", "deepseek", "starcoder", "codegemma", "unknown", "named"])
def test_template_of_the_remote_model(fim_template, model, expected):
    assert remote_template(fim_template, model).name == expected


@pytest.mark.parametrize("settings,message", [
    ({"endpoint": "", "remote_model": "m"}, "needs the server's address"),
    ({"endpoint": "http://127.0.0.1:1/v1", "remote_model": ""}, "`remoteModel`"),
    ({"endpoint": "http://127.0.0.1:1/v1", "remote_model": "m", "api_key_env": "NO_SUCH_VAR_20"},
     "NO_SUCH_VAR_20 (the API key) is not set"),
], ids=["no-endpoint", "no-model", "no-key"])
def test_missing_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine_from_config(Config(engine="openai", **settings))


# --- through lsp-serve over stdio --------------------------------------------------------------
UTIL = "def parse_price(text):\n    \"\"\"'3.50 EUR' -> 3.5\"\"\"\n    return float(text.split()[0])\n"
MAIN = "from util import parse_price\n\n\ndef total(lines):\n    return sum(parse_price(line) for line in lines)\n"


def _wait_indexed(lsp: LspSession, timeout_s: float = 30) -> None:
    """Until the workspace index's $/progress has ended (retrieval then has the other files)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        notes = [n["params"] for n in lsp.client.notifications if n.get("method") == "$/progress"]
        tokens = {p["token"] for p in notes if "indexing" in str(p["value"].get("title", ""))}
        if any(p["token"] in tokens and p["value"]["kind"] == "end" for p in notes):
            return
        time.sleep(0.1)
    raise TimeoutError("the workspace index did not finish")


def test_the_server_sends_its_prompt_in_the_remote_family_template_and_shows_failures(stub, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "util.py").write_text(UTIL)
    (workspace / "main.py").write_text(MAIN)
    stub.reply = stream_reply(["parse_price", "(line)"])
    lsp = LspSession(["--engine", "openai", "--endpoint", stub.endpoint, "--model", "Qwen/Qwen2.5-Coder-7B"],
                     workspace, server_env())
    try:
        status = lsp.ready()
        assert (status["engine"], status["template"], status["model"]) == \
            ("openai", "qwen2.5-coder", "Qwen/Qwen2.5-Coder-7B")
        _wait_indexed(lsp)
        uri = (workspace / "main.py").as_uri()
        text = MAIN.replace("parse_price(line) for", "for") + "\n\nprint(total(['1 EUR']))\n"
        lsp.open(uri, text)
        answer = lsp.wait(lsp.inline(uri, 4, len("    return sum(")))
        assert [i["insertText"] for i in answer["result"]["items"]] == ["parse_price(line)"]
        prompt = stub.requests[-1]["body"]["prompt"]
        # Qwen2.5-Coder's repository layout: other files, this file's path, prefix, suffix, middle.
        assert prompt.startswith("<|file_sep|>util.py\n") and "def parse_price(text):" in prompt
        _head, _, rest = prompt.partition("<|file_sep|>main.py\n<|fim_prefix|>")
        prefix, _, suffix = rest.partition("<|fim_suffix|>")
        assert prefix.endswith("def total(lines):\n    return sum(")
        assert suffix.startswith("for line in lines)\n") and suffix.endswith("<|fim_middle|>")
        # The server fails: nothing is offered, the user is told once, the server keeps serving.
        stub.reply = status_reply(500, b'{"error": {"message": "CUDA out of memory"}}')
        for line in (1, 3):
            assert lsp.wait(lsp.inline(uri, line, 0))["result"]["items"] == []
        failures = [m for m in lsp.messages() if "inference server" in m]
        assert failures == [(f"repolsp: the inference server {stub.endpoint} answered HTTP 500: "
                            "CUDA out of memory; no completions until it answers")]
        assert lsp.status()["engineStats"]["remoteErrors"] >= 1
    finally:
        lsp.close()


def test_openai_without_an_endpoint_is_one_message(tmp_path):
    lsp = LspSession(["--engine", "openai", "--model", "m"], tmp_path, server_env())
    try:
        status = lsp.ready()
        assert status["state"] == "error" and "--endpoint http://HOST:PORT/v1" in status["error"]
        [message] = [m for m in lsp.messages() if "openai engine" in m]
        assert "needs the server's address" in message and "lsp-models pull" not in message
    finally:
        lsp.close()


def test_settings_switch_a_running_server_to_the_team_server_and_back(stub, tmp_path):
    stub.reply = stream_reply(["from_the_team_server"])
    lsp = LspSession(["--engine", "fake"], tmp_path, server_env(REPOLSP_FAKE_COMPLETION="local\n"))
    try:
        assert lsp.ready()["engine"] == "fake"
        lsp.client.notify("workspace/didChangeConfiguration", {"settings": {"repolsp": {
            "engine": "openai", "endpoint": stub.endpoint, "remoteModel": "team-model"}}})
        deadline = time.monotonic() + 30
        while (status := lsp.status())["engine"] != "openai" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (status["engine"], status["model"], status["state"]) == ("openai", "team-model", "ready")
        uri = (tmp_path / "a.py").as_uri()
        lsp.open(uri, "value = ")
        answer = lsp.wait(lsp.inline(uri, 0, 8))
        assert [i["insertText"] for i in answer["result"]["items"]] == ["from_the_team_server"]
        lsp.client.notify("workspace/didChangeConfiguration", {"settings": {"repolsp": {"engine": "fake"}}})
        while lsp.status()["engine"] != "fake" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lsp.status()["engine"] == "fake" and len(stub.requests) == 1
    finally:
        lsp.close()
