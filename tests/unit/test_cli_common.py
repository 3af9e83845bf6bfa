"""models/cli_common.py: the one-line errors and exit statuses lsp-models, lsp-train and lsp-eval share."""

from __future__ import annotations

import logging

import pytest
from repolsp.models import cli_common


@pytest.mark.parametrize("code", [cli_common.EXIT_BAD_INPUT, cli_common.EXIT_FAILED, cli_common.EXIT_INTERRUPTED],
                         ids=["bad-input", "failed", "interrupted"])
def test_fail_prints_one_line_on_stderr_and_returns_the_status(capsys, code):
    assert cli_common.fail("lsp-x", "error: no such model", code) == code
    out, err = capsys.readouterr()
    assert out == "" and err == "lsp-x: error: no such model\n"


def test_an_unforeseen_error_is_one_line_with_the_hint(capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="t"):
        code = cli_common.unexpected("lsp-x", KeyError("k"), logging.getLogger("t"))
    assert code == cli_common.EXIT_BAD_INPUT
    assert capsys.readouterr().err == ("lsp-x: error: KeyError: 'k' "
                                       "(set REPOLSP_LOG_LEVEL=DEBUG for details)\n")
    assert caplog.records[0].exc_info[0] is KeyError  # the traceback, at DEBUG only
