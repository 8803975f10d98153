"""``inferctl batch`` against a router serving the Batch API (here for its fixtures: a real Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from inferflux.cli.batch import progress_line
from inferflux.cli.main import main


def test_the_progress_line() -> None:
    batch = {"status": "in_progress", "request_counts": {"total": 4, "completed": 1, "failed": 1}}
    assert progress_line(batch) == "in_progress [" + "#" * 15 + "." * 15 + "] 2/4 (1 failed)"


async def test_submit_wait_results_status_and_cancel(
    batch_router, mocks, route, tmp_path: Path, capsys
) -> None:
    backend = await mocks()
    harness = await batch_router({"m": route([backend.url])})
    requests = tmp_path / "requests.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    requests.write_bytes(
        b"\n".join(
            orjson.dumps(
                {"custom_id": f"q{n}", "method": "POST", "url": "/v1/chat/completions", "body": body}
            )
            for n in range(3)
        )
    )
    url = ["batch", "--url", harness.url + "/v1"]
    assert await asyncio.to_thread(main, [*url, "submit", str(requests), "--wait"]) == 0
    out, err = capsys.readouterr()
    batch_id = out.strip()
    assert batch_id.startswith("batch_")
    assert "completed   [" + "#" * 30 + "] 3/3 (0 failed)" in err
    assert await asyncio.to_thread(main, [*url, "results", batch_id]) == 0
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["custom_id"] for line in lines] == ["q0", "q1", "q2"]
    assert await asyncio.to_thread(main, [*url, "results", batch_id, "--errors"]) == 1
    assert "has no error file" in capsys.readouterr().err
    assert await asyncio.to_thread(main, [*url, "cancel", batch_id]) == 0
    assert capsys.readouterr().out.strip() == "completed"
    assert await asyncio.to_thread(main, [*url, "status", "batch_nope"]) == 1
    assert capsys.readouterr().err.strip() == "inferctl: error: 404: no batch 'batch_nope'"
