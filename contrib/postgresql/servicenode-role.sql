-- A restricted PostgreSQL role for bootherd service nodes (see README, "Service nodes").
-- Run as the store's owner, in the store's database, after the management node's bootherd has
-- created the store (a service node's bootherd of the same version then does no DDL at open):
--   psql -d bootherd -v snpw='a password' -f servicenode-role.sql
-- Service nodes read every table and write only what a serving appliance writes: leases, node
-- status and boot progress, discovery, the appliance registry, boot timelines, the audit and
-- change logs. Node definitions, osimages, networks, site, policy and passwords stay the
-- management node's (a chdef with this role fails: permission denied).
CREATE ROLE bootherd_sn LOGIN PASSWORD :'snpw';
GRANT CONNECT ON DATABASE :"DBNAME" TO bootherd_sn;
GRANT USAGE ON SCHEMA public TO bootherd_sn;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO bootherd_sn;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO bootherd_sn;
GRANT INSERT, UPDATE, DELETE ON
    -- the change log (each write appends; the newest million are kept) and the audit logs
    bootherd_changelog, auditlog, eventlog,
    -- DHCP: leases, OMAPI host objects, makedhcp -d exclusions lifted by discovery
    dhcpleases, omapihosts, dhcpexcluded,
    -- the appliance registry and boot timelines
    appliances, bootevents,
    -- node status (status port, callbacks, xcatmon) and boot progress (installstatus, next)
    nodelist, chain, nodetype,
    -- discovery: the findme reports and what a match records for the node
    discoverydata, mac, hosts, ipmi, vpd, noderes
TO bootherd_sn;
