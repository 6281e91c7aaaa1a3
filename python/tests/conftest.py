"""pytest configuration: prints the golden summary line at the end of the session."""

import deepseek

GOLDEN = {"passed": 0, "failed": 0, "ran": False}
# The mode the session started in (DEEPSEEK_LAZY); tests may switch it for a while.
MODE = "lazy" if deepseek.is_lazy() else "eager"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if GOLDEN["ran"]:
        terminalreporter.write_line(f"golden-python mode: {MODE}, device: cpu")
        terminalreporter.write_line(
            f"golden-python: {GOLDEN['passed']} passed, {GOLDEN['failed']} failed")
