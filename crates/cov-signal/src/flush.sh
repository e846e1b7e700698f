# cov-signal's one-exec flush: find the service, signal it, wait for its
# counters, list the coverage folder. POSIX sh; runs under busybox (ash) and
# dash/bash with GNU tools. Every input is an argument, never spliced into
# this text:
#   $1 GOCOVERDIR   $2 signal (USR1, 10)   $3 PID, or empty: find the service
#   $4 how long to wait for counters, in ms (0: signal only)
#   $5 1: read the folder through /proc/PID/root (helper without the volume)
# Output, one record a line: "@pids P…", "@error WHAT", "@kill CODE", then
# the listings "@before", "@previous", "@after" of "F SIZE NAME" lines and
# "@end". Names are printed only when made of [0-9A-Za-z._-] (as Go's are),
# so no name can forge a record. Exit 0, or 3-7 as the records say.
d=$1 sig=$2 pid=$3 wait_ms=$4 proc_root=$5
nl='
'

# The coverage files of the folder with their sizes, one "F SIZE NAME" a line.
list() {
  for f in "$d"/covmeta.* "$d"/covcounters.*; do
    n=${f##*/}
    case $n in *[!0-9A-Za-z._-]*) continue ;; esac
    [ -f "$f" ] && [ ! -h "$f" ] || continue
    s=$(wc -c <"$f" 2>/dev/null) && [ -n "$s" ] || continue
    printf 'F %s %s\n' $s "$n"
  done
}

# "new" when $now holds a counter file $before lacks, "grown" when one of
# $before's counter files changed size, else nothing.
verdict() {
  v=
  set -f
  o=$IFS
  IFS=$nl
  for l in $now; do
    case $l in "F "*" covcounters."*) ;; *) continue ;; esac
    case "$nl$before$nl" in *"$nl$l$nl"*) continue ;; esac
    case "$before$nl" in
      *" ${l##* }$nl"*) v=grown ;;
      *) v=new; break ;;
    esac
  done
  IFS=$o
  set +f
  echo $v
}

# With shareProcessNamespace, PID 1 is the pause process: the service is the
# process whose environment holds this container's GOCOVERDIR (not PID 1, not
# this shell; grep, started later, is not in the list).
if [ -z "$pid" ]; then
  set --
  for e in /proc/[0-9]*/environ; do
    case $e in /proc/1/environ | "/proc/$$/environ") continue ;; esac
    set -- "$@" "$e"
  done
  found=
  if [ $# -gt 0 ]; then
    found=$(grep -l -s -z -x -F -e "GOCOVERDIR=$d" "$@")
    # 1: no match, 2: some file unreadable (matches still listed).
    [ $? -le 2 ] || { echo '@error grep'; exit 4; }
  fi
  pids=
  for m in $found; do
    m=${m#/proc/}
    pids="$pids ${m%/environ}"
  done
  echo "@pids$pids"
  set -- $pids
  [ $# -eq 1 ] || exit 5
  pid=$1
fi
[ "$proc_root" = 1 ] && d=/proc/$pid/root$d

if [ "$wait_ms" -gt 0 ]; then
  if [ ! -d "$d" ]; then
    ls -d "$d" >/dev/null
    echo '@error nodir'
    exit 3
  fi
  wc -c </dev/null >/dev/null 2>&1 || { echo '@error wc'; exit 4; }
  before=$(list)
fi

# The kill program on PATH, as a separate exec would run it (not the shell's
# builtin), so what it says and its exit code mean the same.
k=
o=$IFS
IFS=:
for p in $PATH; do
  if [ -f "${p:-.}/kill" ] && [ -x "${p:-.}/kill" ]; then
    k=${p:-.}/kill
    break
  fi
done
IFS=$o
[ -n "$k" ] || { echo '@error kill'; exit 6; }
"$k" "-$sig" "$pid"
rc=$?
echo "@kill $rc"
[ $rc -eq 0 ] || exit 7
[ "$wait_ms" -gt 0 ] || exit 0

# Go writes a counter file as tmp.NAME and renames it into place, so a new
# name is complete; a file that grew in place must keep its size across two
# listings. Without fractional sleep, poll every second.
step=50
waited=0
prev=
while :; do
  now=$(list)
  case $(verdict) in
    new) break ;;
    grown) [ "$now" = "$prev" ] && break ;;
  esac
  [ "$waited" -ge "$wait_ms" ] && break
  prev=$now
  if [ $step = 50 ]; then
    sleep 0.05 2>/dev/null || step=1000
  fi
  [ $step = 1000 ] && sleep 1
  waited=$((waited + step))
done
printf '@before\n%s\n@previous\n%s\n@after\n%s\n@end\n' "$before" "$prev" "$now"
