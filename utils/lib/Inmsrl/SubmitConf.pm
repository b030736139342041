package Inmsrl::SubmitConf;
# Kaldi's conf language for queue.pl and slurm.pl (conf/queue.conf, conf/slurm.conf): it turns
# generic options such as `--mem 4G --gpu 1` into the cluster's submit options.
#
#   command sbatch --export=PATH            # the submit command and its fixed options
#   option mem=* --mem-per-cpu=$0           # --mem <value>: add these words, $0 = the value
#   option gpu=0                            # an exact value beats '*'; no words = add nothing
#   option gpu=* -p gpu --gres=gpu:$0
#   default gpu=0                           # used as if --gpu 0 was given when --gpu is absent
#
# '#' starts a comment. Words are split on whitespace (no shell quoting), so a value such as
# `arch=*64*` reaches the submitter literally.
use strict;
use warnings;
use Inmsrl::Job;

my $NAME = qr/[A-Za-z_][A-Za-z0-9_]*/;

# Parse conf text; $source names it in errors ("conf/slurm.conf" or "the built-in default conf").
sub parse {
    my ($text, $source, $file) = @_;
    my %conf = (source => $source, command => undef, exact => {}, star => {}, defaults => {});
    my $line_no = 0;
    for my $line (split /\n/, $text) {
        $line_no++;
        my $where = defined $file ? "$file:$line_no" : "$source, line $line_no";
        (my $content = $line) =~ s/#.*//;
        my ($keyword, @words) = split ' ', $content;
        next unless defined $keyword;
        if ($keyword eq 'command' && @words) {
            Inmsrl::Job::fail("$where: a second 'command' line") if $conf{command};
            $conf{command} = \@words;
        } elsif ($keyword eq 'option' && @words && $words[0] =~ /^($NAME)=(\S+)$/) {
            my ($name, $value) = ($1, $2);
            shift @words;
            my $seen = $value eq '*' ? $conf{star}{$name} : $conf{exact}{$name}{$value};
            Inmsrl::Job::fail("$where: a second 'option $name=$value' line") if $seen;
            if ($value eq '*') { $conf{star}{$name} = \@words; }
            else { $conf{exact}{$name}{$value} = \@words; }
        } elsif ($keyword eq 'default' && @words == 1 && $words[0] =~ /^($NAME)=(\S+)$/) {
            $conf{defaults}{$1} = $2;
        } else {
            Inmsrl::Job::fail("$where: cannot parse '$line'; expected 'command <submit command>', "
                              . "'option <name>=<value|*> [options]' or 'default <name>=<value>'");
        }
    }
    Inmsrl::Job::fail("$source has no 'command' line") unless $conf{command};
    return \%conf;
}

sub load {
    my ($file) = @_;
    open(my $fh, '<', $file) or Inmsrl::Job::fail("cannot read config $file: $!");
    my $text = do { local $/; <$fh> };
    return parse($text, $file, $file);
}

# The submit command for the given [[name, value], ...] options: the conf's command, then each
# option's words (command-line order, then defaults for options not given).
sub translate {
    my ($conf, @options) = @_;
    my %given = map { $_->[0] => 1 } @options;
    my @missing = map { [$_, $conf->{defaults}{$_}] } grep { !$given{$_} } sort keys %{ $conf->{defaults} };
    my @words = @{ $conf->{command} };
    for my $option (@options, @missing) {
        my ($name, $value) = @$option;
        (my $spelled = $name) =~ tr/_/-/;
        my $exact = $conf->{exact}{$name};
        if ($exact && $exact->{$value}) {
            push @words, @{ $exact->{$value} };
        } elsif (my $star = $conf->{star}{$name}) {
            push @words, map { (my $word = $_) =~ s/\$0/$value/g; $word } @$star;
        } elsif ($exact) {
            my $known = join ', ', sort keys %{ $conf->{exact}{$name} };
            Inmsrl::Job::fail("--$spelled $value: $conf->{source} has no 'option $name=$value' "
                              . "or 'option $name=*' line (values it knows: $known)");
        } else {
            Inmsrl::Job::fail("unknown option --$spelled: $conf->{source} has no 'option $name=...' line");
        }
    }
    return @words;
}

# The conf to use: --config <file>, or the wrapper's built-in default.
sub for_job {
    my ($job, $default_text) = @_;
    return load($job->{config}) if defined $job->{config};
    return parse($default_text, "the built-in default conf of $Inmsrl::Job::PROG (see --help)");
}

1;
