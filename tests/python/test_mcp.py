"""`/mcp` driven by the official MCP Python SDK, as an agent's MCP client would: the two tools,
a thread continued, progress while codex works, refusals, and a cancelled call that leaves
nothing running. On fake-codex through the app-server backend (which keeps threads), and on
exec for what it can and cannot do."""

import contextlib
import json
import re

import anyio
import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from conftest import API_KEY, serve

OTHER_KEY = "another-key"


@pytest.fixture(scope="module")
def app_server():
    yield from serve("app-server", API_KEYS=f"{API_KEY},{OTHER_KEY}")


@pytest.fixture(scope="module")
def forgetful_server():
    """Threads expire a second after their last use."""
    yield from serve("app-server", MCP_THREAD_IDLE_SECS="1")


@pytest.fixture(scope="module")
def agent_workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("workdir")
    (root / "repo").mkdir()
    return root


@pytest.fixture(scope="module", params=["exec", "app-server"])
def agent_server(request, agent_workdir):
    """Agent mode: codex may run commands, in CODEX_WORKDIR, at most workspace-write."""
    yield from serve(
        request.param,
        CODEX_TOOLS="agent",
        CODEX_WORKDIR=str(agent_workdir),
        CODEX_SANDBOX="workspace-write",
    )


@pytest.fixture(scope="module")
def exec_server():
    yield from serve("exec")


@contextlib.asynccontextmanager
async def session(base_url, key=API_KEY):
    """An initialized client session on `base_url`'s `/mcp`, with `key`."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=120)) as http:
        async with streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write, _):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


def leaves(error):
    """The exceptions inside nested exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def run(coro):
    return anyio.run(coro)


def running_runs(base_url):
    text = httpx.get(f"{base_url}/metrics").text
    match = re.search(r"^codex_proxy_codex_running (\d+)$", text, re.M)
    return int(match.group(1))


def test_the_tools_are_listed_with_schemas_an_agent_can_follow(app_server, caplog):
    async def main():
        async with session(app_server) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert sorted(tools) == ["codex", "codex-reply"]
            codex, reply = tools["codex"], tools["codex-reply"]
            assert codex.inputSchema["required"] == ["prompt"]
            assert set(codex.inputSchema["properties"]) == {
                "prompt",
                "model",
                "reasoning_effort",
                "developer_instructions",
                "cwd",
                "sandbox",
            }
            assert reply.inputSchema["required"] == ["threadId", "prompt"]
            for tool in (codex, reply):
                assert "codex" in tool.description
                assert "threadId" in tool.outputSchema["properties"]
                for name, prop in tool.inputSchema["properties"].items():
                    assert prop.get("description"), f"{tool.name}.{name} has no description"

    run(main)
    # Leaving the session closed it cleanly (a 204 to its DELETE).
    assert "Session termination failed" not in caplog.text


def test_codex_answers_and_codex_reply_continues_the_same_thread(app_server):
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)

    async def main():
        async with session(app_server) as s:
            first = await s.call_tool(
                "codex",
                {"prompt": "What is 2+2? [[reasoning]]", "developer_instructions": "Be brief."},
                progress_callback=on_progress,
            )
            assert not first.isError, first.content
            assert first.content[0].text == "Reasoned answer from the mock model."
            thread = first.structuredContent["threadId"]
            assert thread.startswith("thr_")
            assert first.structuredContent["content"] == first.content[0].text

            reply = await s.call_tool("codex-reply", {"threadId": thread, "prompt": "[[items]]"})
            assert not reply.isError, reply.content
            seen = json.loads(reply.content[0].text)
            # codex's thread holds the first turn: the instructions, the question, the answer.
            assert seen["developer"] == "Be brief."
            assert [(i.get("role"), i.get("text")) for i in seen["items"]] == [
                ("user", "What is 2+2? [[reasoning]]"),
                ("assistant", "Reasoned answer from the mock model."),
            ]
            assert seen["input"] == [{"type": "text", "text": "[[items]]"}]
            assert reply.structuredContent["threadId"] == thread

    run(main)
    # codex's reasoning summary came as progress while it worked, then that it answers.
    assert any("Thinking" in (m or "") for m in progress), progress
    assert progress[-1] == "codex is writing its answer"


def test_a_thread_is_continued_only_with_the_key_that_started_it(app_server):
    async def main():
        async with session(app_server) as s:
            first = await s.call_tool("codex", {"prompt": "hello"})
            thread = first.structuredContent["threadId"]
        async with session(app_server, OTHER_KEY) as other:
            stolen = await other.call_tool("codex-reply", {"threadId": thread, "prompt": "hi"})
            assert stolen.isError
            assert f"No thread `{thread}` is kept for this API key" in stolen.content[0].text
            unknown = await other.call_tool("codex-reply", {"threadId": "thr_nope", "prompt": "x"})
            assert unknown.isError
            assert "Start a new thread with `codex`" in unknown.content[0].text
        async with session(app_server) as s:
            mine = await s.call_tool("codex-reply", {"threadId": thread, "prompt": "again"})
            assert not mine.isError, mine.content

    run(main)


def test_bad_arguments_are_tool_errors_that_say_what_to_change(app_server):
    async def main():
        async with session(app_server) as s:
            model = await s.call_tool("codex", {"prompt": "x", "model": "gpt-4o"})
            assert model.isError
            assert "codex-local" in model.content[0].text
            effort = await s.call_tool("codex", {"prompt": "x", "reasoning_effort": "huge"})
            assert effort.isError
            assert "reasoning_effort" in effort.content[0].text
            failed = await s.call_tool("codex", {"prompt": "[[http429]]"})
            assert failed.isError
            assert "rate_limit_exceeded" in failed.content[0].text

    run(main)


def test_a_wrong_key_is_refused_before_any_mcp_message_is_read(app_server):
    for headers in ({"Authorization": "Bearer wrong"}, {}):
        response = httpx.post(
            f"{app_server}/mcp",
            headers={**headers, "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["error"]["data"]["code"] == "invalid_api_key"

    async def main():
        async with session(app_server, "wrong") as s:
            await s.list_tools()

    with pytest.raises(BaseException) as raised:
        run(main)
    assert "401 Unauthorized" in "".join(map(repr, leaves(raised.value)))


def test_a_cancelled_call_stops_codex_and_leaves_nothing_running(app_server):
    async def main():
        async with session(app_server) as s:
            request_id = s._request_id  # the id the session gives its next request
            async with anyio.create_task_group() as group:
                scope = anyio.CancelScope()

                async def call():
                    with scope:
                        await s.call_tool("codex", {"prompt": "[[slow:2000]]"})

                group.start_soon(call)
                # The turn runs: one codex run in progress.
                with anyio.fail_after(10):
                    while running_runs(app_server) == 0:
                        await anyio.sleep(0.05)
                scope.cancel()
                # What an MCP client sends when its user stops a call.
                await s.send_notification(
                    types.ClientNotification(
                        types.CancelledNotification(
                            params=types.CancelledNotificationParams(
                                requestId=request_id, reason="the user stopped it"
                            )
                        )
                    )
                )
            # Within far less than the 2 s between the turn's events, nothing runs.
            with anyio.fail_after(1.5):
                while running_runs(app_server) != 0:
                    await anyio.sleep(0.05)
            # And the server goes on answering.
            after = await s.call_tool("codex", {"prompt": "hello"})
            assert not after.isError

    run(main)


def test_an_expired_thread_is_let_go_in_codex_and_says_so(forgetful_server):
    async def main():
        async with session(forgetful_server) as s:
            first = await s.call_tool("codex", {"prompt": "hello"})
            thread = first.structuredContent["threadId"]
            # fake-codex counts the threads its process has loaded: this one, and the count's own.
            counted = await s.call_tool("codex", {"prompt": "[[threads]]"})
            assert counted.content[0].text == "THREADS: 2"
            await anyio.sleep(1.2)
            expired = await s.call_tool("codex-reply", {"threadId": thread, "prompt": "more"})
            assert expired.isError
            assert "expired after MCP_THREAD_IDLE_SECS" in expired.content[0].text
            # Both were let go in codex: only the new count's thread is loaded.
            with anyio.fail_after(5):
                while True:
                    counted = await s.call_tool("codex", {"prompt": "[[threads]]"})
                    if counted.content[0].text == "THREADS: 1":
                        break
                    await anyio.sleep(0.1)

    run(main)


def test_in_agent_mode_a_call_picks_its_directory_and_sees_the_commands_codex_runs(
    agent_server, agent_workdir
):
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)

    async def main():
        async with session(agent_server) as s:
            where = await s.call_tool(
                "codex", {"prompt": "[[env]]", "cwd": "repo", "sandbox": "read-only"}
            )
            assert not where.isError, where.content
            cwd = where.content[0].text.splitlines()[0]
            assert cwd == f"cwd={(agent_workdir / 'repo').resolve()}"
            ran = await s.call_tool("codex", {"prompt": "[[shell]]"}, progress_callback=on_progress)
            assert ran.content[0].text == "The command printed mock-shell-output."
            outside = await s.call_tool("codex", {"prompt": "x", "cwd": "../.."})
            assert outside.isError
            assert "inside CODEX_WORKDIR" in outside.content[0].text
            wider = await s.call_tool("codex", {"prompt": "x", "sandbox": "danger-full-access"})
            assert wider.isError
            assert "CODEX_SANDBOX (workspace-write)" in wider.content[0].text

    run(main)
    assert "ran `/bin/bash -lc 'echo mock-shell-output'` (exit 0)" in progress, progress


def test_in_chat_mode_a_directory_or_sandbox_is_refused(app_server):
    async def main():
        async with session(app_server) as s:
            refused = await s.call_tool("codex", {"prompt": "x", "cwd": "repo"})
            assert refused.isError
            assert "chat mode" in refused.content[0].text

    run(main)


def test_on_exec_codex_answers_and_codex_reply_says_why_it_cannot(exec_server):
    async def main():
        async with session(exec_server) as s:
            first = await s.call_tool("codex", {"prompt": "hello"})
            assert not first.isError
            assert first.content[0].text == "Hello from the mock model."
            assert first.structuredContent["threadId"] is None
            reply = await s.call_tool("codex-reply", {"threadId": "thr_x", "prompt": "more"})
            assert reply.isError
            assert "CODEX_BACKEND=app-server" in reply.content[0].text

    run(main)
