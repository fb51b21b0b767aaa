#!/usr/bin/env python3
"""Runs every fenced ```sql block of README.md, CHANGELOG.md and doc/*.md,
and checks every relative link of those pages.

Each block runs with psql (ON_ERROR_STOP) in a fresh database `app`, a copy
of docs_template (the reference schema, sample tenants, the extension), with
an export directory of its own under EXPORTS; ALTER SYSTEM is reset after
each.  The fence's info string may say:
  ```sql pg_cron        run in pg_cron's database (postgres), then unschedule;
  ```sql no-run REASON  not run, for the reason given (which must be there).
A link [..](page.md#anchor) must name an existing file and, for a .md page,
one of its headings (GitHub's anchors).
Usage: run_examples.py REPO_ROOT EXPORTS (psql reaches the cluster through PG*)."""
import glob
import os
import re
import subprocess
import sys

FENCE = re.compile(r'^(\s*)```(.*)$')
LINK = re.compile(r'\]\(([^)\s]+)\)')


def pages(root):
    """The manual's pages, README first."""
    return [f'{root}/README.md', f'{root}/CHANGELOG.md'] + sorted(glob.glob(f'{root}/doc/*.md'))


def blocks(path):
    """Yields (line number, info string, text) of each fenced block of a page."""
    lines = open(path, encoding='utf-8').read().split('\n')
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, info, start = match.group(1), match.group(2).strip(), i + 1
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != '```':
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        yield start, info, '\n'.join(body) + '\n'
        i += 1


def prose(path):
    """The page's lines outside fenced blocks."""
    inside = False
    for line in open(path, encoding='utf-8').read().split('\n'):
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            yield line


def anchors(path):
    """GitHub's anchors of a page's headings."""
    seen = {}
    result = set()
    for line in prose(path):
        match = re.match(r'^#{1,6} (.*)$', line)
        if not match:
            continue
        slug = re.sub(r'[^\w\- ]', '', match.group(1).strip().lower()).replace(' ', '-')
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f'{slug}-{count}')
    return result


def check_links(root):
    problems = []
    for page in pages(root):
        for line in prose(page):
            for target in LINK.findall(line):
                if re.match(r'^[a-z]+:', target):
                    continue
                path, _, anchor = target.partition('#')
                resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                if not os.path.exists(resolved):
                    problems.append(f'{os.path.relpath(page, root)}: link to {target}: no such file')
                elif anchor and resolved.endswith('.md') and anchor not in anchors(resolved):
                    problems.append(f'{os.path.relpath(page, root)}: link to {target}: no such heading')
    return problems


def psql(database, script):
    return subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', database],
                          input=script, capture_output=True, text=True)


def admin(script):
    result = psql('postgres', script)
    if result.returncode != 0:
        sys.exit(f'setting up an example failed: {result.stderr}')


def fresh_app(exports, number):
    admin('DROP DATABASE IF EXISTS app WITH (FORCE);\n'
          'CREATE DATABASE app TEMPLATE docs_template;\n'
          f"ALTER DATABASE app SET interactions_cron.export_dir = '{exports}/{number}';\n")


def main():
    root, exports = sys.argv[1], sys.argv[2]
    problems = check_links(root)
    ran = skipped = 0
    for page in pages(root):
        name = os.path.relpath(page, root)
        for line, info, text in blocks(page):
            words = info.split()
            if not words or words[0] != 'sql':
                continue
            if 'no-run' in words:
                if len(words) < 3:
                    problems.append(f'{name}:{line}: a no-run block must say why in its info string')
                skipped += 1
                continue
            ran += 1
            fresh_app(exports, ran)
            database = 'postgres' if 'pg_cron' in words else 'app'
            result = psql(database, text)
            admin('ALTER SYSTEM RESET ALL;\nSELECT pg_reload_conf();\nDROP DATABASE IF EXISTS app2 WITH (FORCE);\n'
                  + ('SELECT interactions_cron.unschedule();\n' if database == 'postgres' else ''))
            if result.returncode != 0:
                problems.append(f'{name}:{line}: the example fails:\n{text}{result.stderr}')
            else:
                print(f'ok: {name}:{line}')
    for problem in problems:
        print('not ok:', problem)
    print(f'{ran} examples ran, {skipped} marked no-run, {len(problems)} problems')
    return 1 if problems else 0


sys.exit(main())
