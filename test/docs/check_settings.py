#!/usr/bin/env python3
"""Checks doc/configuration.md against the library: the settings the code
defines (src/*.c) are exactly the rows of its tables, and each row's type,
default, unit and context are pg_settings' vartype, boot_val, unit and
context.  A secret (context `superuser, hidden`) is not in pg_settings: its
default is what current_setting() shows in a session where nothing set it.
Usage: check_settings.py REPO_ROOT (psql reaches the cluster through PG*)."""
import glob
import re
import subprocess
import sys

ROW = re.compile(r'^\|\s*`(interactions_cron\.[a-z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|')
DEFAULT = re.compile(r'^`([^`]*)`(?:\s+(ms|s|min|B|kB|MB))?(?:\s|$)')
DEFINITION = re.compile(r'Define(?:Custom\w+Variable|ColumnSetting)\(\s*"(interactions_cron\.[a-z0-9_]+)"')


def psql(query):
    """Runs query after loading the library; returns its rows as lists of fields."""
    out = subprocess.run(['psql', '-X', '-At', '-F', '\x1f', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres',
                          '-c', "LOAD 'interactions_cron'", '-c', query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split('\x1f') for line in out.splitlines() if line and line != 'LOAD']


def documented(path):
    """The rows of the settings tables: name -> (type, default, unit, context)."""
    rows = {}
    problems = []
    for number, line in enumerate(open(path, encoding='utf-8'), 1):
        match = ROW.match(line)
        if not match:
            continue
        name, vartype, default, context = (cell.strip() for cell in match.groups())
        parsed = DEFAULT.match(default)
        if not parsed:
            problems.append(f'{path}:{number}: {name}: the default "{default}" is not `value` [unit]')
            continue
        value = '' if parsed.group(1) == "''" else parsed.group(1)
        if name in rows:
            problems.append(f'{path}:{number}: {name} is listed twice')
        rows[name] = (vartype, value, parsed.group(2) or '', context)
    return rows, problems


def main():
    root = sys.argv[1]
    doc, problems = documented(f'{root}/doc/configuration.md')
    code = set()
    for source in glob.glob(f'{root}/src/*.c'):
        code.update(DEFINITION.findall(open(source, encoding='utf-8').read()))
    if len(code) < 10:
        problems.append(f'found only {len(code)} setting definitions in src/*.c: has DefineCustom*Variable moved?')
    for name in sorted(code - doc.keys()):
        problems.append(f'{name} is defined in src/ but missing from doc/configuration.md')
    for name in sorted(doc.keys() - code):
        problems.append(f'{name} is in doc/configuration.md but not defined in src/')

    listed = {name: (vartype, boot, unit, context) for name, vartype, boot, unit, context in
              psql("SELECT name, vartype, boot_val, coalesce(unit, ''), context FROM pg_settings "
                   "WHERE name LIKE 'interactions_cron.%'")}
    for name in sorted(doc.keys() & code):
        vartype, default, unit, context = doc[name]
        if name in listed:
            actual = listed[name]
        else:
            shown = psql(f"SELECT 'shown:' || current_setting('{name}')")[0][0].removeprefix('shown:')
            actual = (vartype, shown, '', 'superuser, hidden')
        for what, want, got in (('type', vartype, actual[0]), ('default', default, actual[1]),
                                ('unit', unit, actual[2]), ('context', context, actual[3])):
            if want != got:
                problems.append(f'{name}: doc/configuration.md says {what} "{want}", the library "{got}"')
    for problem in problems:
        print('not ok:', problem)
    if problems:
        return 1
    print(f'ok: {len(doc)} settings in doc/configuration.md, each as the library defines it')
    return 0


sys.exit(main())
