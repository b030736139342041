#!/usr/bin/env perl
# run.pl: run a command as JOB=a:b parallel tasks on this machine, each with its own log.
# The local backend of the Kaldi job interface; queue.pl (SGE) and slurm.pl take the same arguments.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use Inmsrl::Job;
use POSIX qw(SIG_BLOCK SIG_UNBLOCK SIGHUP SIGINT SIGTERM WNOHANG);
use Time::HiRes qw(sleep time);

my $USAGE = <<'USAGE';
usage: run.pl [options] [JOB=a:b] <log-file> <command> [args...]
Runs <command> once per task id a..b (at most --max-jobs-run at a time) and waits for all. Every
occurrence of JOB (or the range's variable name) in <log-file> and <command> becomes the task id.
Each task's stdout and stderr go to its log, between a header and a "# Ended (code N)" footer.
Exits 1 if any task fails, naming a failed task's log.
  e.g. run.pl JOB=1:4 exp/log/extract.JOB.log inmsrl extract --part JOB --num-parts 4

options:
  --max-jobs-run N   run at most N tasks at once (default: the number of CPUs)
  --num-threads N    threads per task: sets OMP_NUM_THREADS and MKL_NUM_THREADS (torch follows them),
                     as the log's Accounting line records.
                     Without it a task keeps an OMP_NUM_THREADS set by the caller, else gets its share
                     of the CPUs (CPUs / tasks running at once, at least 1): tasks that each took
                     every CPU would slow each other down.
  --gpu N            give each task N GPUs of its own in CUDA_VISIBLE_DEVICES, from the ids in
                     $CUDA_VISIBLE_DEVICES if set, else from `nvidia-smi -L`; tasks wait for free
                     GPUs. --gpu 0 (default) leaves CUDA_VISIBLE_DEVICES as it is.
  --pick all|failed  with 'failed': run only tasks whose log lacks a "# Ended (code 0)" footer
  --dry-run          print the commands that would run and exit (also env INMSRL_DRY_RUN=1)
  --help             this message
Other options (--mem 4G, --config conf/x.conf, --time ..., -q all.q, ...) are accepted and ignored,
so that a cmd.sh written for queue.pl or slurm.pl works unchanged with run.pl.
USAGE

my $job = Inmsrl::Job::parse_command_line($USAGE, @ARGV);
my @ids = Inmsrl::Job::tasks_to_run($job);
my $gpus_per_task = Inmsrl::Job::option($job, 'gpu', 0);
my $max_jobs = Inmsrl::Job::option($job, 'max_jobs_run', Inmsrl::Job::num_cpus());
my @free_gpus = $gpus_per_task > 0 ? gpu_pool($gpus_per_task) : ();
my $threads = task_threads();
# The Accounting line of each log states the threads the task really had.
push @{ $job->{options} }, ['num_threads', $threads // $ENV{OMP_NUM_THREADS}];
my $script = Inmsrl::Job::task_script($job, 'task_id=$1');

if ($job->{dry_run}) {
    for my $id (@ids) {
        my $log = Inmsrl::Job::shell_words(Inmsrl::Job::log_for($job, $id));
        print Inmsrl::Job::substitute($job, $job->{cmd}, $id), " >> $log\n";
    }
    exit 0;
}

my %running;    # pid => { id => task id, gpus => [ids] }; each task leads its own process group
my @failed;
for my $signal (qw(INT TERM HUP)) {
    $SIG{$signal} = sub { stop_all($signal) };
}
my @waiting = @ids;
while (@waiting || %running) {
    while (@waiting && keys(%running) < $max_jobs && @free_gpus >= $gpus_per_task) {
        start_task(shift @waiting);
    }
    my $pid = waitpid(-1, 0);
    Inmsrl::Job::fail("lost track of the running tasks: $!") if $pid < 0;
    next unless $running{$pid};
    my $task = delete $running{$pid};
    push @free_gpus, @{ $task->{gpus} };
    push @failed, $task->{id} if $? != 0;
}
exit Inmsrl::Job::report_failures($job, scalar(@ids), @failed);

# Start one task; signals wait until it is in %running, so stop_all() cannot miss it.
sub start_task {
    my ($id) = @_;
    my @gpus = splice(@free_gpus, 0, $gpus_per_task);
    my $signals = POSIX::SigSet->new(SIGINT, SIGTERM, SIGHUP);
    POSIX::sigprocmask(SIG_BLOCK, $signals);
    my $pid = fork() // Inmsrl::Job::fail("cannot fork: $!");
    if ($pid == 0) {
        setpgrp(0, 0);    # own process group, so stop_all() can kill the whole task
        @SIG{qw(INT TERM HUP)} = ('DEFAULT') x 3;
        POSIX::sigprocmask(SIG_UNBLOCK, $signals);
        $ENV{CUDA_VISIBLE_DEVICES} = join(',', @gpus) if $gpus_per_task > 0;
        @ENV{qw(OMP_NUM_THREADS MKL_NUM_THREADS)} = ($threads) x 2 if defined $threads;
        open(STDIN, '<', '/dev/null');    # a background task must never wait on the terminal
        exec('bash', '-c', $script, 'run.pl', $id) or POSIX::_exit(127);
    }
    setpgrp($pid, $pid);    # also here, so the group exists before we might need to kill it
    $running{$pid} = { id => $id, gpus => \@gpus };
    POSIX::sigprocmask(SIG_UNBLOCK, $signals);
}

# Ctrl-C / kill: terminate every running task's process group, note it in their logs, exit 1.
sub stop_all {
    my ($signal) = @_;
    $SIG{$_} = 'IGNORE' for qw(INT TERM HUP);
    kill('TERM', -$_) for keys %running;
    # Give the tasks' processes 5 s to go (reaping the group leaders), then SIGKILL the rest.
    my $deadline = time() + 5;
    while (grep { waitpid($_, WNOHANG); kill(0, -$_) } keys %running) {
        if (time() > $deadline) { kill('KILL', -$_) for keys %running; last; }
        sleep(0.1);
    }
    for my $pid (keys %running) {
        waitpid($pid, 0);
        my $log = Inmsrl::Job::log_for($job, $running{$pid}{id});
        if (open(my $fh, '>>', $log)) { print $fh "# Killed: run.pl received SIG$signal\n"; }
    }
    my @stopped = map { $_->{id} } values %running;
    print STDERR "run.pl: received SIG$signal; killed ", scalar(@stopped), " running task(s)",
        (@stopped ? ' (' . Inmsrl::Job::format_ids(@stopped) . ')' : ''), "\n";
    exit 1;
}

# Threads per task (see --num-threads in the usage); undef keeps the caller's OMP_NUM_THREADS.
sub task_threads {
    my $asked = Inmsrl::Job::option($job, 'num_threads', undef);
    return $asked if defined $asked;
    return undef if defined $ENV{OMP_NUM_THREADS};
    my $at_once = @ids < $max_jobs ? scalar(@ids) : $max_jobs;
    my $share = int(Inmsrl::Job::num_cpus() / ($at_once || 1));
    return $share > 0 ? $share : 1;
}

# The GPU ids tasks may use; fails when there are fewer than one task needs.
sub gpu_pool {
    my ($needed) = @_;
    my (@pool, $from);
    if (defined $ENV{CUDA_VISIBLE_DEVICES}) {
        @pool = grep { /\S/ } split /\s*,\s*/, $ENV{CUDA_VISIBLE_DEVICES};
        $from = "CUDA_VISIBLE_DEVICES='$ENV{CUDA_VISIBLE_DEVICES}'";
    } else {
        @pool = map { /^GPU (\d+):/ ? $1 : () } `nvidia-smi -L 2>/dev/null`;
        $from = '`nvidia-smi -L`';
    }
    Inmsrl::Job::fail("--gpu $needed: each task needs $needed GPU(s) but $from gives " . scalar(@pool))
        if @pool < $needed;
    return @pool;
}
