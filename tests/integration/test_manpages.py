"""The man pages (docs/man/aegisd.8, aegisctl.1, aegis-sim.1; issue 15 item 2) render without a warning and say
what the binaries say:

- `mandoc -T lint` reports nothing of level WARNING or worse, and groff (what `man -l` runs) renders them with
  every warning on (-ww) and prints nothing;
- aegisd.8 names every flag of `aegisd --help`;
- aegisctl.1 names every global option of `aegisctl --help`, and holds every command of `aegisctl help` with its
  synopsis exactly as the command's own --help prints it (so a new or changed option shows up here);
- aegis-sim.1 names every command of `aegis-sim --help` and every option of each command's --help.
"""

import os
import re
import shutil
import subprocess
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN = os.path.join(ROOT, "docs", "man")
PAGES = ("aegisd.8", "aegisctl.1", "aegis-sim.1")


def run(argv, check=True):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def rendered(page):
    """The page as plain text, each list head on one line (no filling of heads at 80 columns)."""
    out = run(["mandoc", "-T", "ascii", "-O", "width=1000", os.path.join(MAN, page)]).stdout
    return re.sub(r".\x08", "", out)


def squeeze(s):
    return " ".join(s.split())


def options_of(text):
    """Every --long and -x option named in a help text."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b", text))


def help_text(*argv):
    p = run(list(argv), check=False)
    return p.stdout + p.stderr


class ManPagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("mandoc", "groff"):
            if shutil.which(tool) is None:
                raise AssertionError("%s is missing: run sh deploy/install-deps.sh" % tool)

    def test_lint_clean(self):
        for page in PAGES:
            path = os.path.join(MAN, page)
            p = run(["mandoc", "-T", "lint", "-W", "warning", path], check=False)
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""), page)
            g = run(["groff", "-mandoc", "-ww", "-z", "-Tutf8", path], check=False)
            self.assertEqual((g.returncode, g.stdout + g.stderr), (0, ""), page)

    def test_aegisd_flags(self):
        text = help_text(harness.binary("aegisd"), "--help")
        flags = options_of(text)
        self.assertGreaterEqual(len(flags), 12, text)  # -c --config ... -h --help
        page = rendered("aegisd.8")
        for f in sorted(flags):
            self.assertRegex(page, r"(?<![\w-])%s\b" % re.escape(f), "aegisd.8 lacks %s" % f)

    def aegisctl_commands(self):
        """The commands `aegisctl help` lists: one or two words, as far as they still name a command."""
        ctl = harness.binary("aegisctl")
        cmds = []
        for line in help_text(ctl, "help").splitlines():
            m = re.match(r"^  ([a-z]+)(?: ([a-z]+))?\s", line)
            if not m:
                continue
            words = [w for w in m.groups() if w]
            usage = help_text(ctl, *words, "--help").splitlines()[0]
            if len(words) == 2 and not usage.startswith("usage: aegisctl [GLOBAL OPTIONS] %s %s" % tuple(words)):
                words = words[:1]
                usage = help_text(ctl, *words, "--help").splitlines()[0]
            if words not in [c for c, _ in cmds]:
                cmds.append((words, usage))
        return cmds

    def test_aegisctl_commands_and_synopses(self):
        ctl = harness.binary("aegisctl")
        page = rendered("aegisctl.1")
        # a list head, without the text that follows a short one on its line
        heads = {squeeze(re.split(r"(?<=\S)  +", l.strip(), maxsplit=1)[0]) for l in page.splitlines()}
        cmds = self.aegisctl_commands()
        self.assertGreaterEqual(len(cmds), 60, cmds)
        for words, usage in cmds:
            prefix = "usage: aegisctl [GLOBAL OPTIONS] "
            self.assertTrue(usage.startswith(prefix + " ".join(words)), (words, usage))
            synopsis = squeeze(usage[len(prefix):])
            self.assertIn(synopsis, heads, "aegisctl.1 lacks the command line `%s` (aegisctl %s --help)"
                          % (synopsis, " ".join(words)))
        for opt in sorted(options_of(help_text(ctl, "--help"))):
            self.assertRegex(page, r"(?<![\w-])%s\b" % re.escape(opt), "aegisctl.1 lacks the global option %s" % opt)

    def test_aegis_sim_commands_and_options(self):
        sim = harness.binary("aegis-sim")
        page = rendered("aegis-sim.1")
        cmds = re.findall(r"^  ([a-z0-9]+) ", help_text(sim, "--help"), re.M)
        self.assertEqual(sorted(cmds), ["d2d", "provision", "run", "update", "whoami"])
        for cmd in cmds:
            self.assertRegex(page, r"(?m)^ +%s --[a-z]" % cmd, "aegis-sim.1 lacks the command %s" % cmd)
            for opt in sorted(options_of(help_text(sim, cmd, "--help"))):
                self.assertRegex(page, r"(?<![\w-])%s\b" % re.escape(opt),
                                 "aegis-sim.1 lacks %s of aegis-sim %s" % (opt, cmd))


if __name__ == "__main__":
    unittest.main()
