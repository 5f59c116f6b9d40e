#!/usr/bin/env python3
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# plot-run.py DIR OUT.png: draw the main panels of contrib/grafana/keycustody.json from the
# scrapes that record-run.sh saved (DIR/<unix time>.prom), with gnuplot (its pngcairo
# terminal: apt-get install gnuplot-nox). This is not
# Grafana: the same series, computed here from the scraped samples.
import os
import re
import subprocess
import sys
import tempfile

SAMPLE = re.compile(r'^([a-z0-9_]+)(\{[^}]*\})? (\S+)$')


def load(path):
    """The samples of one scrape: {(name, labels): value}."""
    s = {}
    with open(path) as f:
        for line in f:
            m = SAMPLE.match(line.strip())
            if m:
                s[(m.group(1), m.group(2) or '')] = float(m.group(3))
    return s


def get(s, name, **lab):
    """The sum of the samples of name whose labels include lab."""
    v = 0.0
    for (n, l), x in s.items():
        if n == name and all('%s="%s"' % kv in l for kv in lab.items()):
            v += x
    return v


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: plot-run.py DIR OUT.png')
    d, out = sys.argv[1], sys.argv[2]
    files = sorted(f for f in os.listdir(d) if f.endswith('.prom'))
    if len(files) < 3:
        sys.exit('%s: fewer than 3 scrapes' % d)
    runs = [(int(f[:-5]), load(os.path.join(d, f))) for f in files]
    t0 = runs[0][0]
    ckrs = sorted({re.search(r'ckr="([^"]+)"', l).group(1) for _, s in runs
                   for (n, l) in s if n == 'keycustody_pkcs11_errors_total'})
    tmp = tempfile.mkdtemp()
    rows = []
    for (ta, a), (tb, b) in zip(runs, runs[1:]):
        dt = max(tb - ta, 1)
        row = [tb - t0]
        row.append(get(b, 'keycustody_hsm_state', state='ok'))
        row.append(get(b, 'keycustody_hsm_state', state='down'))
        row.append(get(b, 'keycustody_daemon_up'))
        for route in ('create_csr', 'get_csr', 'delete_csr'):
            row.append((get(b, 'keycustody_http_requests_total', route=route) -
                        get(a, 'keycustody_http_requests_total', route=route)) / dt)
        for name, lab in (('keycustody_request_duration_seconds',
                           {'op': 'create_csr', 'key_type': 'p256v1'}),
                          ('keycustody_hsm_operation_duration_seconds',
                           {'op': 'keygen', 'key_type': 'p256v1'}),
                          ('keycustody_hsm_operation_duration_seconds',
                           {'op': 'sign', 'key_type': 'p256v1'}),
                          ('keycustody_audit_write_duration_seconds', {})):
            dc = get(b, name + '_count', **lab) - get(a, name + '_count', **lab)
            ds = get(b, name + '_sum', **lab) - get(a, name + '_sum', **lab)
            row.append(1000 * ds / dc if dc > 0 else float('nan'))
        row.append(get(b, 'keycustody_keys_in_custody'))
        row.append(get(b, 'keycustody_requests_in_flight'))
        row.append(get(b, 'keycustody_hsm_events_total', event='module_failure'))
        row.append(get(b, 'keycustody_hsm_events_total', event='recovery'))
        for c in ckrs:
            row.append(get(b, 'keycustody_pkcs11_errors_total', ckr=c))
        rows.append(row)
    data = os.path.join(tmp, 'run.dat')
    with open(data, 'w') as f:
        for r in rows:
            f.write(' '.join('NaN' if x != x else '%g' % x for x in r) + '\n')
    ck = ''.join(", '%s' u 1:%d w steps lw 2 t '%s'" % (data, 16 + i, c.replace('_', '\\_'))
                 for i, c in enumerate(ckrs))
    if not ck:
        ck = ", 0 t 'none'"
    gp = """
set terminal pngcairo size 1400,1000 font 'sans,10'
set output '%(out)s'
set multiplot layout 3,2 title "keycustody metrics of a real run (drawn with gnuplot by contrib/grafana/plot-run.py from /metrics scrapes; not Grafana)"
set xlabel 'seconds'
set key top left
set grid
set title 'HSM state and daemon up (keycustody\\_hsm\\_state, keycustody\\_daemon\\_up)'
set yrange [-0.1:1.2]
plot '%(d)s' u 1:2 w steps lw 2 t 'state ok', '' u 1:3 w steps lw 2 t 'state down', '' u 1:4 w steps dt 2 t 'daemon up'
set yrange [*:*]
set title 'HTTP requests per second by route (keycustody\\_http\\_requests\\_total)'
plot '%(d)s' u 1:5 w lines lw 2 t 'create\\_csr', '' u 1:6 w lines lw 2 t 'get\\_csr', '' u 1:7 w lines lw 2 t 'delete\\_csr'
set title 'Mean latency, ms, P-256 (request, keygen, sign histograms)'
plot '%(d)s' u 1:8 w linespoints t 'create\\_csr request', '' u 1:9 w linespoints t 'keygen', '' u 1:10 w linespoints t 'sign'
set title 'PKCS#11 errors by CKR name and token events, cumulative (keycustody\\_pkcs11\\_errors\\_total, keycustody\\_hsm\\_events\\_total)'
plot '%(d)s' u 1:14 w steps lw 2 t 'module failures', '' u 1:15 w steps lw 2 t 'recoveries'%(ck)s
set title 'Keys in custody (keycustody\\_keys\\_in\\_custody)'
plot '%(d)s' u 1:12 w steps lw 2 t 'keys'
set title 'Audit write mean latency, ms, and requests in flight'
plot '%(d)s' u 1:11 w linespoints t 'audit write ms', '' u 1:13 w steps t 'in flight'
unset multiplot
""" % {'out': out, 'd': data, 'ck': ck}
    subprocess.run(['gnuplot'], input=gp.encode(), check=True)


if __name__ == '__main__':
    main()
