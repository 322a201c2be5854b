#!/usr/bin/perl
# A stand-in for xCAT's Perl client (xCAT-client/bin/xcatclient, xcatDBcmds, xcatclientnnr over
# perl-xCAT/xCAT/Client.pm), written for bootherd's tests from xCAT's wire format: the request is
# XML::Simple's XMLout of the same hash of arrays, over IO::Socket::SSL with ~/.xcat's
# certificates, and the responses are read with XMLin(ForceArray, SuppressEmpty => undef) and
# printed by the rules of Client.pm's handle_response. xCAT's own files are not in this
# repository; this script is ours.
#
# Usage: XCATHOST=host[:port] xcat-client.pl <command> [args...]
use strict;
use warnings;
use Cwd;
use IO::Socket::SSL;
use XML::Simple;
$XML::Simple::PREFERRED_PARSER = 'XML::Parser' if eval { require XML::Parser; 1 };

my $cmd = shift @ARGV or die "usage: xcat-client.pl command [args]\n";

# How xCAT's client scripts split the command line (xCAT-client.spec links each command to one).
my %dbcmds = map { $_ => 1 } qw(mkdef lsdef chdef rmdef);
my %nnr    = map { $_ => 1 } qw(tabdump tabch tabprune gettab nodeadd nodegrpch regnotif unregnotif
  copycds makenetworks mknb packimage rmimage liteimg imgexport imgimport monadd monls monrm
  monstart monstop lsxcatd);

my $req = { command => [$cmd], cwd => [ getcwd() ], clienttype => ['cli'] };
if ($dbcmds{$cmd} or $nnr{$cmd}) {
    $req->{arg} = [@ARGV] if @ARGV;
} else {
    # xcatclient: options before the first other word, that word is the noderange, the rest
    # are arguments.
    my @args = @ARGV;
    my @opts;
    while (@args and $args[0] =~ /^-/) { push @opts, shift @args; }
    my $nr = shift @args;
    $req->{noderange} = [$nr] if defined $nr;
    my @all = (@opts, @args);
    $req->{arg} = \@all if @all;
}
# Test hooks: a user name asserted in the request (believed from trusted peers only), and an
# xCAT login (<becomeuser>).
$req->{username} = [ $ENV{XCATTEST_USERNAME} ] if $ENV{XCATTEST_USERNAME};
$req->{becomeuser} = [ { username => [ $ENV{XCATTEST_USER} ], password => [ $ENV{XCATTEST_PASSWORD} // '' ] } ]
  if $ENV{XCATTEST_USER};
if (!-t STDIN and -p STDIN) {
    local $/;
    my $in = <STDIN>;
    $req->{stdin} = [$in] if defined $in and length $in;
}

my $host = $ENV{XCATHOST} || 'localhost:3001';
$host .= ':3001' unless $host =~ /:\d+$/;
my $home = $ENV{HOME};
my %ssl = (
    PeerAddr            => $host,
    Timeout             => 15,
    SSL_key_file        => "$home/.xcat/client-cred.pem",
    SSL_cert_file       => "$home/.xcat/client-cred.pem",
    SSL_ca_file         => "$home/.xcat/ca.pem",
    SSL_verify_mode     => SSL_VERIFY_PEER,
    SSL_verifycn_scheme => 'none',
    SSL_use_cert        => 1,
);
unless (-r $ssl{SSL_key_file} and -r $ssl{SSL_ca_file}) {
    %ssl = (PeerAddr => $host, Timeout => 15, SSL_verify_mode => SSL_VERIFY_NONE);
}
my $sock = IO::Socket::SSL->new(%ssl)
  or die "Connection failure: " . ($SSL_ERROR || $@ || $!) . "\n";
print $sock XMLout($req, RootName => 'xcatrequest', NoAttr => 1, KeyAttr => []);
$sock->flush();

my $exit = 0;
my $buf  = '';
my $done = 0;
while (!$done) {
    my $n = sysread($sock, $buf, 65536, length $buf);
    last unless $n;
    while ($buf =~ s/^(.*?<\/xcatresponse>)//s) {
        my $doc = $1;
        $doc =~ s/\e/xxxxESCxxxx/g;
        my $rsp = XMLin($doc, SuppressEmpty => undef, ForceArray => 1, KeyAttr => []);
        show($rsp);
        if (exists $rsp->{serverdone}) { $done = 1; last; }
    }
}
unless ($done) {
    print STDERR "ERROR/WARNING: communication with the xCAT server seems to have been ended prematurely\n";
    $exit = 1;
}
exit $exit;

sub unesc { my $t = shift; $t =~ s/xxxxESCxxxx/\e/g; return $t; }

sub show {
    my $rsp = shift;
    if (defined $rsp->{errorcode}) { $exit |= $_ for grep { defined } @{ $rsp->{errorcode} }; }
    for my $e (grep { defined } @{ $rsp->{error} || [] }) {
        print STDERR ($rsp->{NoErrorPrefix} ? '' : 'Error: ') . unesc($e) . "\n";
    }
    for my $w (grep { defined } @{ $rsp->{warning} || [] }) {
        print STDERR ($rsp->{NoWarnPrefix} ? '' : 'Warning: ') . unesc($w) . "\n";
    }
    for my $i (grep { defined } @{ $rsp->{info} || [] }) { print unesc($i) . "\n"; }
    for my $node (@{ $rsp->{node} || [] }) {
        my $line = $node->{name} ? $node->{name}->[0] : '';
        my $err  = 0;
        if ($node->{errorcode}) { $exit |= $_ for grep { defined } @{ $node->{errorcode} }; }
        if ($node->{error}) { $line .= ': Error: ' . $node->{error}->[0]; $err = 1; }
        if ($node->{data}) {
            my $d = $node->{data}->[0];
            $line .= ': ' . (ref $d ? ($d->{contents} ? $d->{contents}->[0] : '') : $d);
        }
        if ($err) { print STDERR unesc($line) . "\n" } else { print unesc($line) . "\n" }
    }
    for my $d (@{ $rsp->{data} || [] }) {
        next unless defined $d;
        my $text = ref $d
          ? join(': ', grep { defined } ($d->{desc} ? $d->{desc}->[0] : undef), ($d->{contents} ? $d->{contents}->[0] : undef))
          : $d;
        print unesc($text) . "\n" if length $text;
    }
}
