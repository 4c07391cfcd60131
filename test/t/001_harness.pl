# 001_harness.pl -- proves the TAP harness works: a cluster starts, csvpipe
# can be created without being preloaded, read_text returns rows, and a node
# with shared_preload_libraries = 'csvpipe' starts too.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'cluster answers');

# CREATE EXTENSION works without shared_preload_libraries, and installs the
# control file's default version (the one the server reads).
my $default_version = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'csvpipe'");
$node->safe_psql('postgres', 'CREATE EXTENSION csvpipe');
is( $node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'csvpipe'"),
	$default_version,
	'CREATE EXTENSION csvpipe without preload');

# A small file, with a quoted field holding the delimiter.
my $dir = PostgreSQL::Test::Utils::tempdir;
my $csv = "$dir/small.csv";
PostgreSQL::Test::Utils::append_to_file($csv, qq{a,b\n1,x\n2,"y,z"\n});

is( $node->safe_psql('postgres',
		"SELECT count(*) FROM csvpipe.read_text('$csv')"),
	'2',
	'read_text returns the data rows');
is( $node->safe_psql('postgres',
		"SELECT fields[2] FROM csvpipe.read_text('$csv') ORDER BY line_no DESC LIMIT 1"),
	'y,z',
	'read_text unquotes a field holding the delimiter');

# The same node with csvpipe preloaded.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'csvpipe'");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'csvpipe', 'node restarts with csvpipe preloaded');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM csvpipe.read_text('$csv')"),
	'2',
	'read_text works when preloaded');

$node->stop;
done_testing();
