"""pytest configuration: prints the golden summary line at the end of the session."""

GOLDEN = {"passed": 0, "failed": 0, "ran": False}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if GOLDEN["ran"]:
        import deepseek

        mode = "lazy" if deepseek.is_lazy() else "eager"
        terminalreporter.write_line(f"golden-python mode: {mode}, device: cpu")
        terminalreporter.write_line(
            f"golden-python: {GOLDEN['passed']} passed, {GOLDEN['failed']} failed")
