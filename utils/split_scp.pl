#!/usr/bin/env perl
# Splits a Kaldi-style list file (scp, track2dur, ...) into contiguous parts of near-equal size, for
# spreading work over JOB=1:N tasks. Compatible with Kaldi's utils/split_scp.pl for the common forms:
#
#   split_scp.pl in.scp out.1.scp out.2.scp ... out.N.scp   # writes all N parts
#   split_scp.pl -j N k in.scp                              # prints part k (0-based) to stdout
#   split_scp.pl --one-based -j N k in.scp                  # the same with k counted from 1
#
# Lines keep their order; part sizes differ by at most one line. Asking for more parts than there are
# lines is an error, because a task with nothing to do usually means a wrong nj.
use strict;
use warnings;

my $prog = 'split_scp.pl';
my ($num_jobs, $job_id, $one_based) = (undef, undef, 0);
while (@ARGV && $ARGV[0] =~ /^-/) {
    my $opt = shift @ARGV;
    if ($opt eq '--one-based') { $one_based = 1; }
    elsif ($opt eq '-j') {
        @ARGV >= 2 or die "$prog: -j needs <num-jobs> <job-id>\n";
        ($num_jobs, $job_id) = splice(@ARGV, 0, 2);
        $num_jobs =~ /^\d+$/ && $num_jobs > 0 or die "$prog: bad number of jobs '$num_jobs'\n";
        $job_id =~ /^\d+$/ or die "$prog: bad job id '$job_id'\n";
    }
    elsif ($opt eq '-h' || $opt eq '--help') {
        print "usage: $prog [--one-based] [-j num-jobs job-id] in.scp [out1.scp out2.scp ...]\n";
        exit 0;
    }
    else { die "$prog: unknown option $opt\n"; }
}
@ARGV >= 1 or die "usage: $prog [--one-based] [-j num-jobs job-id] in.scp [out1.scp ...]\n";
my $in = shift @ARGV;
my @outputs = @ARGV;

if (defined $num_jobs) {
    @outputs == 0 or die "$prog: with -j, give no output files (the part goes to stdout)\n";
    $job_id -= 1 if $one_based;
    $job_id >= 0 && $job_id < $num_jobs
        or die "$prog: job id out of range for $num_jobs jobs" . ($one_based ? ' (one-based)' : '') . "\n";
} else {
    @outputs > 0 or die "$prog: give output files, or -j num-jobs job-id\n";
    $num_jobs = scalar @outputs;
}

open(my $fh, '<', $in) or die "$prog: cannot open $in: $!\n";
my @lines = <$fh>;
close $fh;
my $n = scalar @lines;
$n >= $num_jobs or die "$prog: $in has $n lines, fewer than the $num_jobs parts asked for\n";

# Part j holds lines [start(j), start(j+1)): the first (n mod parts) parts get one extra line.
sub part_start { my ($j) = @_; my $q = int($n / $num_jobs); my $r = $n % $num_jobs;
                 return $j * $q + ($j < $r ? $j : $r); }

if (@outputs == 0) {
    print @lines[part_start($job_id) .. part_start($job_id + 1) - 1];
    exit 0;
}
for my $j (0 .. $num_jobs - 1) {
    my $out = $outputs[$j];
    open(my $oh, '>', "$out.tmp") or die "$prog: cannot write $out: $!\n";
    print $oh @lines[part_start($j) .. part_start($j + 1) - 1];
    close $oh or die "$prog: cannot write $out: $!\n";
    rename("$out.tmp", $out) or die "$prog: cannot rename $out.tmp to $out: $!\n";
}
