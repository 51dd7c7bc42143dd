#!/bin/sh
# Writes what this machine is into $report_dir/last, from cron.
set -e
. /etc/report.conf
{
	echo "$title"
	echo "on $(uname -n), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	uptime
} > "$dir/last.tmp"
mv "$dir/last.tmp" "$dir/last"
