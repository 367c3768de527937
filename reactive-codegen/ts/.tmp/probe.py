import subprocess, sys, re
# usage: probe.py file start_regex end_regex  -> deletes lines in [start,end) and prints size
f, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
src = open(f).read()
lines = src.split('\n')
si = next(i for i,l in enumerate(lines) if re.search(a, l))
ei = next(i for i,l in enumerate(lines) if i > si and re.search(b, l))
open(f,'w').write('\n'.join(lines[:si] + lines[ei:]))
try:
    out = subprocess.run(['node', '.tmp/sz.mjs'], capture_output=True, text=True).stdout.split('\n')[0]
    print(a, '->', out)
finally:
    open(f,'w').write(src)
