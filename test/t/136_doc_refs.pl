# 136_doc_refs.pl -- the places the code and the documents send a reader to
# are there (no cluster is started):
#  1. Every citation of a document's section -- README "X", (README, "X"),
#     doc/FILE.md "X", (doc/FILE.md, "X"), across comment line breaks -- in
#     src/, sql/ (the frozen scripts too), test/t/ and the Makefile names a
#     heading of that document, or an anchor (<a id="x">) made from it.
#  2. Every relative link of README.md and doc/*.md reaches a file, and its
#     #fragment a heading or an anchor of that file.
#  3. doc/install.md shows the control file's default_version as the
#     version CREATE EXTENSION installs.
# run_tests.sh copies README.md, doc/, the Makefile, csvpipe.control and
# src/'s sources for this test.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Find;
use File::Spec;
use Test::More;

sub slurp
{
	my ($f) = @_;
	open(my $fh, '<', $f) or die "$f: $!";
	local $/;
	my $t = <$fh>;
	close $fh;
	return $t;
}

# GitHub's heading ids: lower case, punctuation but '-' and '_' dropped,
# spaces to '-'
sub slug
{
	my ($h) = @_;
	$h = lc $h;
	$h =~ s/`//g;
	$h =~ s/[^\w\- ]//g;
	$h =~ s/ /-/g;
	return $h;
}

# a document's headings (as written, lower case) and ids
my %doc;
sub doc_of
{
	my ($f) = @_;
	return $doc{$f} if $doc{$f};
	my $t = slurp($f);
	(my $prose = $t) =~ s/^```.*?^```//msg;
	my (%heading, %id, %seen);
	while ($prose =~ /^#+\s+(.*?)\s*$/mg)
	{
		my $h = $1;
		(my $plain = lc $h) =~ s/`//g;
		$heading{$plain} = 1;
		my $s = slug($h);
		$s .= '-' . $seen{$s} if $seen{$s}++;
		$id{$s} = 1;
	}
	$id{$1} = 1 while $t =~ /<a (?:id|name)="([^"]+)"/g;
	return $doc{$f} = { heading => \%heading, id => \%id };
}

# ---- 1. citations of sections ----
my @files = ('Makefile');
find({ wanted => sub { push @files, $File::Find::name if /\.[ch]$/ }, no_chdir => 1 }, 'src');
push @files, glob('sql/*.sql'), grep { !/136_doc_refs/ } glob('test/t/*.pl');
ok(@files > 60, 'sources to look in: ' . scalar(@files));
my $ncited = 0;
for my $f (@files)
{
	my $t = slurp($f);
	# a citation may run over a line break of a comment
	$t =~ s/\n[ \t]*(?:\*|#|--|\/\/)?[ \t]*/ /g;
	while ($t =~ /\b(README(?:\.md)?|doc\/[\w-]+\.md)[,:]?\s+"([^"\$]+)"/g)
	{
		my ($target, $section) = ($1, $2);
		$target = 'README.md' if $target eq 'README';
		$ncited++;
		my $d = -r $target ? doc_of($target) : undef;
		ok($d && ($d->{heading}{ lc $section } || $d->{id}{ slug($section) }),
			"$f cites $target \"$section\"");
	}
}
ok($ncited >= 10, "citations found: $ncited");

# ---- 2. links of the documents ----
my @docs = ('README.md', glob('doc/*.md'));
ok(@docs >= 7, 'documents: ' . scalar(@docs));
for my $f (@docs)
{
	(my $t = slurp($f)) =~ s/^```.*?^```//msg;
	while ($t =~ /\]\(([^)\s]+)\)/g)
	{
		my $link = $1;
		next if $link =~ /^[a-z]+:/;
		my ($path, $frag) = split /#/, $link, 2;
		my $target = $path eq '' ? $f : File::Spec->canonpath(File::Spec->catfile(dirname($f), $path));
		$target =~ s{^(?:[^/]+/\.\./)+}{};
		if (!-e $target)
		{
			fail("$f links to $link: no file $target");
			next;
		}
		next unless defined $frag;
		ok(doc_of($target)->{id}{$frag}, "$f links to $link");
	}
}

# ---- 3. the version doc/install.md shows ----
my ($default) = slurp('csvpipe.control') =~ /^default_version\s*=\s*'([^']+)'/m;
ok(defined $default, "csvpipe.control: default_version $default");
like(slurp('doc/install.md'), qr/SELECT extversion FROM pg_extension WHERE extname = 'csvpipe';\s+-- \Q$default\E\n/,
	"doc/install.md: CREATE EXTENSION installs $default");

done_testing();
