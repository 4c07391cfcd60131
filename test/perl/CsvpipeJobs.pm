# CsvpipeJobs.pm -- helpers for TAP tests of csvpipe's job queue.
#
#   set_max_jobs($node, $n)   set csvpipe.max_jobs in postgresql.auto.conf,
#                             reload, and return once the launcher scans
#                             the queue with the new value
package CsvpipeJobs;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(set_max_jobs);

sub set_max_jobs
{
	my ($node, $n) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET csvpipe.max_jobs = $n; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres', "SELECT current_setting('csvpipe.max_jobs') = '$n'")
	  or die "max_jobs not reloaded";
	launcher_reloaded($node);
}

# The launcher reads a reloaded setting at the top of its loop, just before
# it stamps the scan's start (its pg_stat_activity.query_start).  Once a new
# session sees the new value, the postmaster has signalled the launcher: a
# scan stamped later has the new value -- or, had it checked just before the
# signal came, the scan after it does.  So: two scans stamped after the
# setting was seen (pg_reload_conf() wakes the launcher for each).
sub launcher_reloaded
{
	my ($node) = @_;
	for (1 .. 2)
	{
		my $t = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
		$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
		$node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'csvpipe launcher' AND query_start > '$t'")
		  or die "the launcher did not scan the queue again";
	}
}

1;
