"""Searches another process's memory for byte strings (issue 13: no private key material in aegisd).

    found = scan_process_memory(pid, [needle, ...])
    found.hits     {needle: address of its first occurrence} for the needles found
    found.scanned  bytes read; found.skipped: regions that could not be read
    found.too_large  (start, end, path) of the mappings over MAX_REGION, not read

Reads /proc/PID/maps and then every readable mapping through /proc/PID/mem, in chunks that overlap by the
longest needle's length - 1, so a needle that straddles two chunks is still found. Regions the kernel will not
hand out ([vvar], [vsyscall], device mappings, pages gone since maps was read) are skipped and counted, never
fatal. Mappings over MAX_REGION are not read but listed: AddressSanitizer's shadow is one readable mapping of
about 14 TiB, and reading it would make the kernel build page tables for all of it (tens of GiB: the OOM killer
ends the scanned process). Not being allowed to read the process at all (another user, not dumpable, Yama) raises PermissionError:
a scan that read nothing must not pass for "not found" (callers should also check found.scanned).

ec_private_needles(path) gives the forms of an EC private key's scalar to look for."""

import collections

ScanResult = collections.namedtuple("ScanResult", "hits scanned skipped too_large")

CHUNK = 1 << 20
# Far more than any mapping of aegisd's own data (its whole readable memory is under 100 MiB, under 400 MiB with
# sanitizers), far less than a sanitizer's shadow.
MAX_REGION = 4 << 30
# Mappings that are not the process's data: reading them fails or shows kernel pages.
SPECIAL = ("[vvar]", "[vvar_vclock]", "[vsyscall]")


def _regions(pid):
    """(start, end, path) of every readable mapping of pid."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 5:
                continue
            span, perms = parts[0], parts[1]
            path = parts[5].strip() if len(parts) > 5 else ""
            if perms[0] != "r" or path in SPECIAL:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            out.append((start, end, path))
    return out


def _scan_region(mem, start, end, needles, overlap, hits):
    """Scans [start, end) of the open /proc/PID/mem into hits. Returns the bytes read, or None when the region
    could not be read at all."""
    pos, carry, read = start, b"", 0
    while pos < end:
        n = min(CHUNK, end - pos)
        try:
            mem.seek(pos)
            data = mem.read(n)
        except (OSError, ValueError, OverflowError):
            data = b""
        if not data:
            # Unreadable from here (a hole, pages unmapped meanwhile): whatever was read still counts.
            return read if read else None
        read += len(data)
        buf = carry + data
        base = pos - len(carry)
        for nd in needles:
            if nd not in hits:
                i = buf.find(nd)
                if i >= 0:
                    hits[nd] = base + i
        carry = buf[-overlap:] if overlap else b""
        pos += len(data)
    return read


def scan_process_memory(pid, needles):
    """Searches every readable mapping of process pid for each of needles (non-empty bytes). Returns a
    ScanResult. Raises PermissionError when /proc/pid/mem cannot be opened, FileNotFoundError when pid is
    gone."""
    needles = [bytes(n) for n in needles]
    if not needles or any(len(n) == 0 for n in needles):
        raise ValueError("needles must be non-empty byte strings")
    overlap = max(len(n) for n in needles) - 1
    hits, scanned, skipped = {}, 0, 0
    regions = _regions(pid)
    too_large = [r for r in regions if r[1] - r[0] > MAX_REGION]
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, _path in regions:
            if end - start > MAX_REGION:
                continue
            got = _scan_region(mem, start, end, needles, overlap, hits)
            if got is None:
                skipped += 1
            else:
                scanned += got
            if len(hits) == len(needles):
                break
    return ScanResult(hits, scanned, skipped, too_large)


def ec_private_needles(key_pem_path):
    """The forms an EC private key's scalar takes in memory: big-endian (DER, PEM decoded, OpenSSL's and
    GnuTLS's byte strings) and little-endian (the limbs of an OpenSSL BIGNUM or a GMP/nettle mpz on a
    little-endian machine). Needs python3-cryptography."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    with open(key_pem_path, "rb") as f:
        key = load_pem_private_key(f.read(), password=None)
    nbytes = (key.curve.key_size + 7) // 8
    be = key.private_numbers().private_value.to_bytes(nbytes, "big")
    return [be, be[::-1]]
