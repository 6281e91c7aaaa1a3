"""pytest configuration: prints the golden summary line at the end of the session."""

GOLDEN = {"passed": 0, "failed": 0, "ran": False}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if GOLDEN["ran"]:
        terminalreporter.write_line(
            f"golden-python: {GOLDEN['passed']} passed, {GOLDEN['failed']} failed")
