#!/usr/bin/env python3
"""Runs the integration tests (tests/integration/test_*.py) against the binaries in a build directory.

    python3 tests/integration/run.py --build build [-k PATTERN] [-v] [test_ops ...]

Prints each failure with its traceback and, as its last line, "N passed, N failed". Exit status 0 only when
tests ran and none failed. Tests that could not run because their class or module setup failed count as failed.
"""

import argparse
import os
import signal
import sys
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


class CountingResult(unittest.TestResult):
    def __init__(self, verbose, stream):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self.passed = []
        self.failed = []  # (name, text)
        self.skipped_names = []
        self.started = set()
        self._t0 = 0.0

    def _out(self, s):
        self.stream.write(s + "\n")
        self.stream.flush()

    def startTest(self, test):
        super().startTest(test)
        self.started.add(test.id())
        self._t0 = time.monotonic()
        if self.verbose:
            self.stream.write("%s ... " % test.id())
            self.stream.flush()

    def _dt(self):
        return " (%.1fs)" % (time.monotonic() - self._t0)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())
        if self.verbose:
            self._out("ok" + self._dt())

    def _fail(self, test, err, kind):
        text = self._exc_info_to_string(err, test)
        name = test.id() if isinstance(test, unittest.TestCase) else str(test)
        self.failed.append((name, text))
        if self.verbose and isinstance(test, unittest.TestCase):
            self._out(kind + self._dt())
        self._out("=" * 70)
        self._out("%s: %s" % (kind, name))
        self._out("-" * 70)
        self._out(text.rstrip())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, "ERROR")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self._fail(subtest, err, kind)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.skipped_names.append("%s (%s)" % (test.id() if isinstance(test, unittest.TestCase) else test, reason))
        if self.verbose:
            self._out("skipped: " + reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed.append(test.id())

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.failed.append((test.id(), "unexpected success"))


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build directory holding aegisd, aegisctl, tests/tools/")
    ap.add_argument("-k", dest="pattern", action="append", help="only tests whose id contains PATTERN")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    ap.add_argument("modules", nargs="*", help="test modules (test_ops, ...); default: all test_*.py")
    args = ap.parse_args()

    os.environ["AEGIS_BUILD"] = os.path.abspath(args.build)
    sys.path.insert(0, HERE)
    warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1_1 in test_ops
    # SIGTERM of the runner (e.g. a timeout): unwind like ^C, which unittest does not swallow; the atexit hook
    # of harness.py then kills the daemons still running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = ["*%s*" % p for p in args.pattern]
    if args.modules:
        suite = unittest.TestSuite()
        for m in args.modules:
            suite.addTests(loader.loadTestsFromName(m[:-3] if m.endswith(".py") else m))
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    all_ids = [t.id() for t in iter_tests(suite)]

    result = CountingResult(args.verbose, sys.stdout)
    t0 = time.monotonic()
    try:
        suite.run(result)
    except KeyboardInterrupt:
        result.failed.append(("(interrupted)", "KeyboardInterrupt"))
    elapsed = time.monotonic() - t0

    # Tests that never started: their setUpClass/setUpModule failed (already reported as an error above), or
    # they failed to import (unittest's _FailedTest, which does start and fail).
    not_run = [i for i in all_ids if i not in result.started]
    skipped = {n.split(" ")[0] for n in result.skipped_names}
    not_run = [i for i in not_run if i not in skipped]
    # The setUpClass/tearDownClass errors themselves are counted once each, besides the tests they stopped.
    failed_names = [n for n, _ in result.failed] + ["%s (not run: setup failed)" % i for i in not_run]
    n_passed = len(result.passed)
    n_failed = len(failed_names)

    print("-" * 70)
    if result.skipped_names:
        print("skipped: %d" % len(result.skipped_names))
        for s in result.skipped_names:
            print("  skipped: %s" % s)
    if failed_names:
        print("failed tests:")
        for n in failed_names:
            print("  FAILED TEST: %s" % n)
    print("integration: %.1f s" % elapsed)
    print("%d passed, %d failed" % (n_passed, n_failed))
    sys.stdout.flush()
    return 0 if n_failed == 0 and n_passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
