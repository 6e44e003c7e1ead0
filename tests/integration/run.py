"""Run every tests/integration/test_*.py; print one line per test and a total.

Each test prints PASS, FAIL (an assertion) or ERROR (anything else, counted as
failed) or SKIP with its reason; failures' details follow; the last line is
"integration: N passed, N failed, N skipped" (tests/run-tests.sh reads it).
Exit status 0 only if nothing failed.  Arguments: test name patterns (-k).
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Result(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.passed = 0
        self.details = []

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()

    def name(self, test):
        # A class whose setUpClass failed (a missing fixture core) comes as
        # an _ErrorHolder: no test method, its description names the class.
        method = getattr(test, "_testMethodName", None)
        return "%s.%s" % (type(test).__name__, method) if method else str(test)

    def line(self, word, test, extra=""):
        t0 = getattr(self, "t0", None) or time.monotonic()
        print("%-5s %s (%.1fs)%s" % (word, self.name(test), time.monotonic() - t0, extra), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1
        self.line("PASS", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.line("FAIL", test)
        self.details.append((self.name(test), err[1]))

    def addError(self, test, err):
        super().addError(test, err)
        self.line("ERROR", test)
        self.details.append((self.name(test), self._exc_info_to_string(err, test)))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            # A failed subTest counts in the total: say which, with why.
            self.line("FAIL", test, " " + subtest._subDescription())
            self.details.append((self.name(test) + " " + subtest._subDescription(),
                                 self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.line("SKIP", test, ": " + reason)


def main():
    loader = unittest.TestLoader()
    patterns = sys.argv[1:]
    if patterns:
        loader.testNamePatterns = ["*%s*" % p for p in patterns]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    result = Result()
    suite.run(result)
    for name, err in result.details:
        print("\n---- %s\n%s" % (name, err))
    failed = len(result.failures) + len(result.errors)
    print("integration: %d passed, %d failed, %d skipped" % (result.passed, failed, len(result.skipped)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
