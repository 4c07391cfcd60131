# CsvpipeShards.pm -- three local clusters for sharded-target tests and
# benchmarks: a coordinator with csvpipe preloaded and postgres_fdw, and N
# shard clusters (default 2), all on private unix sockets (no TCP), started
# by PostgreSQL::Test::Cluster (so every node is stopped when the test ends,
# by Cluster.pm's END block, even on failure).
#
# Where it is found: test/run_tests.sh runs prove with
#     -I "$PG_PERL_DIR" -I "$SRC/test/perl"
# (PG_PERL_DIR is the PGXS src/test/perl holding PostgreSQL::Test::*), so a
# TAP test just says `use CsvpipeShards;`.  A script run by hand, e.g. a
# benchmark, does the same with perl -I:
#     perl -I "$(dirname $(pg_config --pgxs))/../../src/test/perl" \
#          -I test/perl test/bench/yours.pl
# (PostgreSQL::Test::Cluster also needs PG_REGRESS or nothing -- it only
# wants initdb and pg_ctl in PATH -- and TESTDIR/TMPDIR for its files.)
#
# API (everything else is internal):
#
#   my $s = CsvpipeShards->new(%opt);     # init + start 1 + N clusters
#       name        => 'shard'            # node name prefix
#       shards      => 2                  # shard clusters: r1, r2, ...
#       coord_conf  => "..."              # extra postgresql.conf lines (coordinator)
#       shard_conf  => "..."              # extra postgresql.conf lines (each shard)
#       ledger      => 1                  # csvpipe's shard ledgers, which
#                                         # mode => 'chunked' needs: the table
#                                         # on each shard (SHARD_LEDGER_DDL,
#                                         # SELECT, INSERT to shard_loader)
#                                         # and here a foreign table
#                                         # csvpipe_ledger_r1 ... over each
#                                         # server (SELECT, INSERT to loader
#                                         # and writer)
#     Coordinator: shared_preload_libraries = 'csvpipe', max_worker_processes
#     = 24, max_prepared_transactions = 10, timezone UTC; CREATE EXTENSION
#     csvpipe and postgres_fdw; one foreign server per shard, named r1, r2...
#     (host = the shard's socket dir, port, dbname postgres).
#     Roles on the coordinator, each with a user mapping on every server:
#       the bootstrap superuser (the OS user)  -> the shard's superuser
#       loader   LOGIN, pg_read_server_files   -> shard role shard_loader
#       writer   LOGIN, no file privilege      -> shard role shard_loader
#     (mappings of non-superusers say password_required 'false': trust auth
#     on unix sockets).  Each shard has role shard_loader (LOGIN).
#
#   $s->coord                      the coordinator (PostgreSQL::Test::Cluster)
#   $s->shard($i)                  shard i (1-based), a PostgreSQL::Test::Cluster
#   $s->server($i)                 its foreign server's name ('r1', ...)
#   $s->nshards
#   $s->sql($sql)                  safe_psql on the coordinator, db postgres
#   $s->sql_as($role, $sql)        the same as a role (SET ROLE, so the
#                                  role's user mapping is the one used)
#   $s->shard_sql($i, $sql)        safe_psql on shard i
#
#   $s->create_sharded($table, %opt)
#       columns    => 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean'
#                                  (gen_csv narrow's, the default)
#       key        => 'id'         the hash partition key
#       batch_size => 1000         postgres_fdw batch_size of the foreign partitions
#     Creates $table PARTITION BY HASH (key) with MODULUS 2 + nshards:
#     remainders 0 and 1 local ("${table}_p0", "${table}_p1"), remainder
#     1+i on shard i (foreign table "${table}_r$i" -> the shard's table
#     $table, created there with the same columns).  INSERT, SELECT and
#     TRUNCATE go to loader and writer on the coordinator and to
#     shard_loader on the shards.
#   $s->parts($table)             the server keys: ('local', 'r1', 'r2', ...)
#   $s->counts($table)            { local => n, r1 => n, ... , total => n }
#                                 read on each server itself (shard rows
#                                 from the shard's own table, not through
#                                 the FDW)
#   $s->checksums($table)         { local => 'count md5', r1 => ..., total => ... }
#                                 md5 of the rows as text ordered by
#                                 key then text (duplicates count)
#   $s->duplicates($table)        { local => n, r1 => n, ... }: rows whose key
#                                 appears more than once on that server
#   $s->truncate_table($table)    empties the local partitions and every
#                                 shard's table (on each server directly)
#   $s->copy_expected($table, $path, $copy_options)
#                                 truncates, COPY $table FROM $path (options,
#                                 default 'FORMAT csv, HEADER'), returns
#                                 checksums(), truncates again: what COPY
#                                 loads, per server
#   $s->is_like($table, $expected, $label)
#                                 one Test::More is() per server (and the
#                                 total): checksums($table) against
#                                 $expected (from copy_expected); returns
#                                 true when all are equal
#   $s->ledger_rows($i, $where)   count of shard i's csvpipe ledger rows
#                                 (optional SQL condition)
#   $s->stop_shard($i, $mode)     stop shard i ('fast' unless $mode)
#   $s->start_shard($i)           start it again (same port and socket)
#
#   SHARD_LEDGER_DDL              the DDL of csvpipe's ledger table on a
#                                 shard (doc/sharded.md)
package CsvpipeShards;

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More ();

our $NARROW = 'id bigint, ts timestamptz, name text, amount numeric(12,2), flag boolean';

# csvpipe's ledger on a shard: one row per (job, chunk) committed there, in
# the chunk's own remote transaction (doc/sharded.md)
use constant SHARD_LEDGER_DDL =>
  'CREATE TABLE public.csvpipe_ledger (job text, chunk_no bigint, rows bigint NOT NULL, '
  . 'committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job, chunk_no))';

sub new
{
	my ($class, %opt) = @_;
	my $self = bless {
		name => $opt{name} // 'shard',
		nshards => $opt{shards} // 2,
		shards => [],
		tables => {},
		ledger => $opt{ledger} // 1,
	}, $class;

	for my $i (1 .. $self->{nshards})
	{
		my $n = PostgreSQL::Test::Cluster->new("$self->{name}_r$i");
		$n->init;
		$n->append_conf('postgresql.conf', qq{
timezone = 'UTC'
max_connections = 40
} . ($opt{shard_conf} // ''));
		$n->start;
		$n->safe_psql('postgres', 'CREATE ROLE shard_loader LOGIN');
		$n->safe_psql('postgres', SHARD_LEDGER_DDL
			  . '; GRANT SELECT, INSERT ON public.csvpipe_ledger TO shard_loader')
		  if $self->{ledger};
		push @{ $self->{shards} }, $n;
	}

	my $c = PostgreSQL::Test::Cluster->new("$self->{name}_coord");
	$c->init;
	$c->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'csvpipe'
max_worker_processes = 24
max_prepared_transactions = 10
timezone = 'UTC'
max_parallel_workers_per_gather = 0
} . ($opt{coord_conf} // ''));
	$c->start;
	$self->{coord} = $c;
	my $su = $c->safe_psql('postgres', 'SELECT current_user');
	$self->{superuser} = $su;
	my $setup = qq{
CREATE EXTENSION csvpipe;
CREATE EXTENSION postgres_fdw;
CREATE ROLE loader LOGIN;
GRANT pg_read_server_files TO loader;
CREATE ROLE writer LOGIN;
};
	for my $i (1 .. $self->{nshards})
	{
		my $n = $self->shard($i);
		my $srv = $self->server($i);
		my $host = $n->host;
		my $port = $n->port;
		$setup .= qq{
CREATE SERVER $srv FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '$host', port '$port', dbname 'postgres');
CREATE USER MAPPING FOR "$su" SERVER $srv OPTIONS (user '$su');
CREATE USER MAPPING FOR loader SERVER $srv
  OPTIONS (user 'shard_loader', password_required 'false');
CREATE USER MAPPING FOR writer SERVER $srv
  OPTIONS (user 'shard_loader', password_required 'false');
};
		$setup .= qq{
CREATE FOREIGN TABLE csvpipe_ledger_$srv (job text, chunk_no bigint, rows bigint)
  SERVER $srv OPTIONS (schema_name 'public', table_name 'csvpipe_ledger');
GRANT SELECT, INSERT ON csvpipe_ledger_$srv TO loader, writer;
} if $self->{ledger};
	}
	$c->safe_psql('postgres', $setup);
	return $self;
}

sub coord { return $_[0]{coord}; }
sub nshards { return $_[0]{nshards}; }
sub shard { my ($self, $i) = @_; return $self->{shards}[ $i - 1 ]; }
sub server { my ($self, $i) = @_; return "r$i"; }

sub sql
{
	my ($self, $sql) = @_;
	return $self->{coord}->safe_psql('postgres', $sql);
}

sub sql_as
{
	my ($self, $role, $sql) = @_;
	return $self->{coord}->safe_psql('postgres', "SET ROLE $role; $sql");
}

sub shard_sql
{
	my ($self, $i, $sql) = @_;
	return $self->shard($i)->safe_psql('postgres', $sql);
}

sub create_sharded
{
	my ($self, $table, %opt) = @_;
	my $cols = $opt{columns} // $NARROW;
	my $key = $opt{key} // 'id';
	my $batch = $opt{batch_size} // 1000;
	my $mod = 2 + $self->{nshards};
	$self->{tables}{$table} = { key => $key };

	for my $i (1 .. $self->{nshards})
	{
		$self->shard_sql($i, qq{
CREATE TABLE $table ($cols);
GRANT SELECT, INSERT, TRUNCATE ON $table TO shard_loader;
});
	}
	my $ddl = qq{
CREATE TABLE $table ($cols) PARTITION BY HASH ($key);
CREATE TABLE ${table}_p0 PARTITION OF $table FOR VALUES WITH (MODULUS $mod, REMAINDER 0);
CREATE TABLE ${table}_p1 PARTITION OF $table FOR VALUES WITH (MODULUS $mod, REMAINDER 1);
};
	for my $i (1 .. $self->{nshards})
	{
		my $srv = $self->server($i);
		my $rem = 1 + $i;
		$ddl .= qq{
CREATE FOREIGN TABLE ${table}_r$i PARTITION OF $table
  FOR VALUES WITH (MODULUS $mod, REMAINDER $rem)
  SERVER $srv OPTIONS (table_name '$table', batch_size '$batch');
};
	}
	$ddl .= "GRANT SELECT, INSERT, TRUNCATE ON $table TO loader, writer;\n";
	$self->sql($ddl);
	return;
}

sub parts
{
	my ($self) = @_;
	return ('local', map { $self->server($_) } 1 .. $self->{nshards});
}

# run $query (with TABLE replaced) on each server's own rows
sub _per_server
{
	my ($self, $table, $query) = @_;
	my %r;
	my $local = "(SELECT * FROM ${table}_p0 UNION ALL SELECT * FROM ${table}_p1)";
	(my $q = $query) =~ s/\bTABLE\b/$local/g;
	$r{local} = $self->sql($q);
	for my $i (1 .. $self->{nshards})
	{
		($q = $query) =~ s/\bTABLE\b/$table/g;
		$r{ $self->server($i) } = $self->shard_sql($i, $q);
	}
	return \%r;
}

sub counts
{
	my ($self, $table) = @_;
	my $r = $self->_per_server($table, 'SELECT count(*) FROM TABLE t');
	my $total = 0;
	$total += $_ for values %$r;
	$r->{total} = $total;
	return $r;
}

sub checksums
{
	my ($self, $table) = @_;
	my $key = $self->{tables}{$table}{key} // 'id';
	my $r = $self->_per_server($table,
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t.$key, t::text)), '') FROM TABLE t");
	$r->{total} = $self->sql(
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t.$key, t::text)), '') FROM $table t");
	return $r;
}

sub duplicates
{
	my ($self, $table) = @_;
	my $key = $self->{tables}{$table}{key} // 'id';
	return $self->_per_server($table,
		"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM TABLE t GROUP BY t.$key HAVING count(*) > 1) d");
}

sub truncate_table
{
	my ($self, $table) = @_;
	$self->sql("TRUNCATE ${table}_p0, ${table}_p1");
	$self->shard_sql($_, "TRUNCATE $table") for 1 .. $self->{nshards};
	return;
}

sub copy_expected
{
	my ($self, $table, $path, $opts) = @_;
	$opts //= 'FORMAT csv, HEADER';
	$self->truncate_table($table);
	$self->sql("COPY $table FROM '$path' ($opts)");
	my $r = $self->checksums($table);
	$self->truncate_table($table);
	return $r;
}

sub is_like
{
	my ($self, $table, $expected, $label) = @_;
	my $got = $self->checksums($table);
	my $ok = 1;
	for my $k ($self->parts, 'total')
	{
		$ok &= Test::More::is($got->{$k}, $expected->{$k}, "$label: $k as COPY");
	}
	return $ok;
}

sub ledger_rows
{
	my ($self, $i, $where) = @_;
	return $self->shard_sql($i,
		'SELECT count(*) FROM public.csvpipe_ledger' . ($where ? " WHERE $where" : ''));
}

sub stop_shard
{
	my ($self, $i, $mode) = @_;
	$self->shard($i)->stop($mode // 'fast');
	return;
}

sub start_shard
{
	my ($self, $i) = @_;
	$self->shard($i)->start;
	return;
}

1;
