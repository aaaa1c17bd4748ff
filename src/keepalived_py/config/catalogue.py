"""Catalogue of the configuration keywords keepalived itself understands.

Pure data, used by kpd to recognise - and report by name as "not implemented" - every keyword
keepalived accepts but kpd does not, instead of calling it unknown.

Source: keyword names (interface facts only, no code) were read from the parser sources of
acassen/keepalived at tag v2.2.7 (the version Debian 12 ships) and at tag v2.4.3 (the newest
release tag available), with the intermediate tags v2.2.8 .. v2.4.2 checked for the version in
which newer keywords appeared: keepalived/core/global_parser.c, keepalived/vrrp/vrrp_parser.c,
keepalived/check/check_parser.c, check_api.c (install_checker_common_keywords), check_http.c,
check_tcp.c, check_misc.c, check_smtp.c, check_dns.c, check_udp.c, check_ping.c, check_file.c,
check_bfd.c, keepalived/bfd/bfd_parser.c and keepalived/trackers/track_file.c, following every
install_keyword_root / install_keyword / install_keyword_quoted / install_keyword_conditional /
install_sublevel / install_sublevel_end call (and install_root_end_handler /
install_sublevel_end_handler, renamed install_level_end_handler in v2.3). The defaults and
value ranges noted in the comments come from the keyword handlers and from alloc_global_data /
set_vrrp_defaults (core/global_data.c), alloc_vrrp / alloc_vrrp_script (vrrp/vrrp_data.c),
vrrp_complete_instance (vrrp/vrrp.c), alloc_vs / alloc_rs / validate_check_config
(check/check_data.c) and queue_checker (check/check_api.c).

The catalogue is the union of all keywords of v2.2.7 .. v2.4.3 (nothing was removed in that
range); keywords that are newer than v2.2.7 carry a "since vX" comment. Keywords that only
exist when keepalived is built with an optional feature (SNMP, DBus, nftables, BFD, VMAC, ...)
are included and, where it matters, commented.

Conventions:

* ``KEEPALIVED_KEYWORDS[section][keyword]`` is the name of the child section when the keyword
  opens a ``{ }`` block of further keywords (install_sublevel, or a root keyword with
  sub-keywords), ``"LIST"`` when its block is a plain value list read by alloc_value_block() /
  read_value_block() (virtual_ipaddress, notification_email, track_script, unicast_peer,
  static_ipaddress, ...), and ``None`` otherwise.
* SSL_GET shares HTTP_GET's keywords, so both map to the "HTTP_GET" section, which also
  lists SSL_GET's extra ``tls_compliant``; track_file and vrrp_track_file both map to
  "track_file"; other sub-levels use the keyword itself as the section name.
* ``virtual_server_group`` is a value block in keepalived (lines of address ranges and
  ``fwmark N``); it is given a section here because kpd models it as one.
"""

#: section name -> {keyword: child section name or None}
KEEPALIVED_KEYWORDS: dict[str, dict[str, str | None]] = {
    # Top-level keywords (install_keyword_root). include/includer/..., $NAME=, @conditionals and ~SEQ/~LST are
    # handled by the lexer in lib/parser.c and are not keywords.
    "root": {
        # built with _WITH_LINKBEAT_
        "linkbeat_use_polling": None,
        "net_namespace": None,
        "net_namespace_ipvs": None,
        "namespace_with_ipsets": None,
        "use_pid_dir": None,
        "instance": None,
        # seconds 0..UINT_MAX; default 5 (CHILD_WAIT_SECS, core/main.c)
        "child_wait_time": None,
        "global_defs": "global_defs",
        "track_group": "track_group",
        # value block: one address per line (ip addr syntax)
        "static_ipaddress": "LIST",
        # value block: one route per line (ip route syntax)
        "static_routes": "LIST",
        # value block: one rule per line (ip rule syntax)
        "static_rules": "LIST",
        "vrrp_sync_group": "vrrp_sync_group",
        "garp_group": "garp_group",
        # value block of interface names; replaces vrrp_instance linkbeat_use_polling
        "linkbeat_interfaces": "LIST",
        "vrrp_instance": "vrrp_instance",
        "vrrp_script": "vrrp_script",
        "vrrp_track_process": "vrrp_track_process",
        # value block: '<IFNAME> <DOWN_DELAY> [<UP_DELAY>]' per line
        "interface_up_down_delays": "LIST",
        "SSL": "SSL",
        # keepalived reads this block with alloc_value_block() (a value list); kpd models it as a section, see
        # KEEPALIVED_KEYWORDS['virtual_server_group']
        "virtual_server_group": "virtual_server_group",
        "virtual_server": "virtual_server",
        # installed with a different handler in the bfd/vrrp/checker processes; same keywords
        "bfd_instance": "bfd_instance",
        # canonical name; vrrp_track_file is its deprecated synonym
        "track_file": "track_file",
        # deprecated synonym of track_file (after v2.0.20), logs a deprecation message
        "vrrp_track_file": "track_file",
    },
    # global_defs { } - keepalived/core/global_parser.c init_global_keywords().
    "global_defs": {
        "process_names": None,
        "process_name": None,
        "vrrp_process_name": None,
        "checker_process_name": None,
        # deprecated since 12/07/20 -> checker_process_name
        "lvs_process_name": None,
        "bfd_process_name": None,
        "router_id": None,
        "notification_email_from": None,
        "smtp_server": None,
        "smtp_helo_name": None,
        # integer seconds 0..4294 (UINT_MAX/TIMER_HZ); 0 -> error, set to 1; default 30
        "smtp_connect_timeout": None,
        # value block of e-mail addresses
        "notification_email": "LIST",
        "smtp_alert": None,
        "startup_script": None,
        # seconds 1..1000; default 10 once startup_script is set
        "startup_script_timeout": None,
        "shutdown_script": None,
        # seconds 1..1000; default 10 once shutdown_script is set
        "shutdown_script_timeout": None,
        # -1..sched_get_priority_max(SCHED_RR); no value -> the max; default 0 (off)
        "max_auto_priority": None,
        # microseconds 1..10000000; default 1000000
        "min_auto_priority_delay": None,
        "smtp_alert_vrrp": None,
        "smtp_alert_checker": None,
        "checker_log_all_failures": None,
        "dynamic_interfaces": None,
        "no_email_faults": None,
        "default_interface": None,
        "disable_local_igmp": None,
        "lvs_timeouts": None,
        # no argument: flush IPVS at startup
        "lvs_flush": None,
        # CORRECT spelling. No argument -> flush the whole IPVS table (LVS_FLUSH_FULL); 'VS' -> delete only
        # keepalived's virtual servers (LVS_FLUSH_VS); any other argument -> config error
        "lvs_flush_on_stop": None,
        # deprecated spelling (after v2.1.5) of lvs_flush_on_stop, same handler
        "lvs_flush_onstop": None,
        "lvs_sync_daemon": None,
        # must parse as an IPv4 multicast address; default 224.0.0.18
        "vrrp_mcast_group4": None,
        # must be IPv6 multicast; default ff02::12
        "vrrp_mcast_group6": None,
        # integer seconds 0..4294; default 5; 0 = no second set of GARPs
        "vrrp_garp_master_delay": None,
        # 0..UINT_MAX, 0 -> error and set to 1; default 5
        "vrrp_garp_master_repeat": None,
        # integer seconds 0..UINT_MAX; default 0 (no refresh)
        "vrrp_garp_master_refresh": None,
        # 0..UINT_MAX, 0 -> set to 1; default 1
        "vrrp_garp_master_refresh_repeat": None,
        # integer seconds 0..4294; default = vrrp_garp_master_delay
        "vrrp_garp_lower_prio_delay": None,
        # 0..INT_MAX; default = vrrp_garp_master_repeat
        "vrrp_garp_lower_prio_repeat": None,
        # 1..100; default 3
        "vrrp_down_timer_adverts": None,
        # decimal seconds (us resolution), min 0.000001; default 0
        "vrrp_garp_interval": None,
        # decimal seconds (us resolution), min 0.000001; default 0
        "vrrp_gna_interval": None,
        # [bool]: sets repeat 1, refresh 0, refresh_repeat 0, delay 0 where still at defaults
        "vrrp_min_garp": None,
        # built with _HAVE_VRRP_VMAC_
        "vrrp_garp_extra_if": None,
        # deprecated after v2.2.2 -> vrrp_garp_extra_if (same handler)
        "vrrp_vmac_garp_intvl": None,
        "vrrp_lower_prio_no_advert": None,
        "vrrp_higher_prio_send_advert": None,
        # 2 or 3; default 2 (IPv6 instances always use 3)
        "vrrp_version": None,
        # built with iptables or nftables support
        "vrrp_iptables": None,
        "vrrp_ipsets": None,
        # built with _WITH_NFTABLES_
        "nftables": None,
        "nftables_priority": None,
        "nftables_ifindex": None,
        "nftables_ipvs": None,
        "nftables_ipvs_priority": None,
        "nftables_ipvs_start_fwmark": None,
        "nftables_counters": None,
        "vrrp_check_unicast_src": None,
        "vrrp_skip_check_adv_addr": None,
        "vrrp_strict": None,
        # process nice value -20..19
        "vrrp_priority": None,
        "vrrp_no_swap": None,
        "vrrp_rt_priority": None,
        "vrrp_cpu_affinity": None,
        # default 10000 (RT_RLIMIT_DEFAULT)
        "vrrp_rlimit_rttime": None,
        # deprecated 02/02/2020 -> vrrp_rlimit_rttime
        "vrrp_rlimit_rtime": None,
        "notify_fifo": None,
        "notify_fifo_script": None,
        "vrrp_notify_fifo": None,
        "vrrp_notify_fifo_script": None,
        "vrrp_notify_priority_changes": None,
        "fifo_write_vrrp_states_on_reload": None,
        "lvs_notify_fifo": None,
        "lvs_notify_fifo_script": None,
        # process nice value -20..19
        "checker_priority": None,
        "checker_no_swap": None,
        "checker_rt_priority": None,
        "checker_cpu_affinity": None,
        "checker_rlimit_rttime": None,
        # deprecated 02/02/2020 -> checker_rlimit_rttime
        "checker_rlimit_rtime": None,
        # process nice value -20..19
        "bfd_priority": None,
        "bfd_no_swap": None,
        "bfd_rt_priority": None,
        "bfd_cpu_affinity": None,
        "bfd_rlimit_rttime": None,
        # deprecated 02/02/2020 -> bfd_rlimit_rttime
        "bfd_rlimit_rtime": None,
        "snmp_socket": None,
        "enable_traps": None,
        "enable_snmp_vrrp": None,
        # deprecated v2.0.0 -> enable_snmp_vrrp (same handler)
        "enable_snmp_keepalived": None,
        "enable_snmp_rfc": None,
        "enable_snmp_rfcv2": None,
        "enable_snmp_rfcv3": None,
        "enable_snmp_checker": None,
        "enable_dbus": None,
        "dbus_service_name": None,
        # default user keepalived_script (lib/notify.c get_default_script_user)
        "script_user": None,
        "enable_script_security": None,
        "vrrp_netlink_cmd_rcv_bufs": None,
        "vrrp_netlink_cmd_rcv_bufs_force": None,
        "vrrp_netlink_monitor_rcv_bufs": None,
        "vrrp_netlink_monitor_rcv_bufs_force": None,
        "process_monitor_rcv_bufs": None,
        "process_monitor_rcv_bufs_force": None,
        "lvs_netlink_cmd_rcv_bufs": None,
        "lvs_netlink_cmd_rcv_bufs_force": None,
        "lvs_netlink_monitor_rcv_bufs": None,
        "lvs_netlink_monitor_rcv_bufs_force": None,
        "rs_init_notifies": None,
        "no_checker_emails": None,
        "vrrp_rx_bufs_policy": None,
        "vrrp_rx_bufs_multiplier": None,
        # decimal seconds, min 0.001
        "vrrp_startup_delay": None,
        "log_unknown_vrids": None,
        # default 'vrrp' (used when unset)
        "vmac_prefix": None,
        "vmac_addr_prefix": None,
        "umask": None,
        "random_seed": None,
        # not in _ONE_PROCESS_DEBUG_ builds
        "reload_check_config": None,
        # not in _ONE_PROCESS_DEBUG_ builds
        "reload_time_file": None,
        # not in _ONE_PROCESS_DEBUG_ builds
        "reload_repeat": None,
        # not in _ONE_PROCESS_DEBUG_ builds
        "reload_file": None,
        # not in _ONE_PROCESS_DEBUG_ builds
        "include_check": None,
        # not in _ONE_PROCESS_DEBUG_ builds
        "config_save_dir": None,
        "tmp_config_directory": None,
        "data_use_instance": None,
        # since v2.2.8
        "v3_checksum_as_v2": None,
        # since v2.2.8
        "json_version": None,
        # since v2.3.0
        "use_symlink_paths": None,
        # since v2.3.0
        "snmp_vs_stats_update_interval": None,
        # since v2.3.0
        "snmp_rs_stats_update_interval": None,
        # since v2.3.0
        "dbus_no_interface_name": None,
        # since v2.3.2
        "iproute_usr_dir": None,
        # since v2.3.2
        "iproute_etc_dir": None,
        # since v2.3.3
        "vrrp_owner_ignore_adverts": None,
        # since v2.3.3
        "state_dump_file": None,
        # since v2.3.3
        "stats_dump_file": None,
        # since v2.3.3
        "json_dump_file": None,
        # since v2.4.0
        "vrrp_delay_after_boot": None,
    },
    # vrrp_script NAME { } - vrrp_parser.c.
    "vrrp_script": {
        # quoted string allowed; block is dropped if missing
        "script": None,
        # v2.2.7: integer seconds 0..4294, 0 -> error and 1; newer (checked v2.4.3): decimal seconds with ms
        # resolution. Default 1
        "interval": None,
        # same parsing as interval; 0 -> 1; default 0 = use interval
        "timeout": None,
        # -253..253 inclusive, optional 'reverse'; default 0
        "weight": None,
        # 1..INT_MAX; invalid -> 1; default 1
        "rise": None,
        # 1..INT_MAX; invalid -> 1; default 1
        "fall": None,
        "user": None,
        "init_fail": None,
    },
    # track_file NAME { } and its deprecated synonym vrrp_track_file NAME { } - trackers/track_file.c
    # add_track_file_keywords().
    "track_file": {
        "file": None,
        # -254..254 [reverse]; default 1
        "weight": None,
        # [VALUE] [overwrite]; VALUE outside -254..254 warns; default value 0
        "init_file": None,
    },
    # vrrp_instance NAME { } - vrrp_parser.c init_vrrp_keywords().
    "vrrp_instance": {
        # built with _HAVE_VRRP_VMAC_
        "use_vmac": None,
        "use_vmac_addr": None,
        "vmac_xmit_base": None,
        # built with _HAVE_VRRP_IPVLAN_
        "use_ipvlan": None,
        # value block: one peer address per line (with optional options)
        "unicast_peer": "LIST",
        "unicast_fault_no_peer": None,
        "check_unicast_src": None,
        # built with _WITH_UNICAST_CHKSUM_COMPAT_
        "old_unicast_checksum": None,
        "native_ipv6": None,
        # MASTER|BACKUP; anything else -> error, BACKUP. Unset: MASTER iff priority 255
        "state": None,
        # required unless unicast peers are configured ('Unknown interface!')
        "interface": None,
        # built with _HAVE_VRF_
        "vrf": None,
        "dont_track_primary": None,
        # value block '<IF> [weight W [reverse]]': W read as -254..254, +/-254 -> error, clamped to +/-253 (so
        # effectively -253..253)
        "track_interface": "LIST",
        # value block '<SCRIPT> [weight W [reverse|noreverse]]': W read as -254..254, +/-254 -> error, clamped
        # to +/-253; default = the vrrp_script's weight
        "track_script": "LIST",
        # value block '<TRACK_FILE> [weight W [reverse|noreverse]]': W -254..254; default = file's
        "track_file": "LIST",
        # value block '<PROCESS> [weight W [reverse|noreverse]]': W -254..254
        "track_process": "LIST",
        # value block '<BFD> [weight W [reverse]]': W -253..253
        "track_bfd": "LIST",
        "mcast_src_ip": None,
        "unicast_src_ip": None,
        "mcast_dst_ip": None,
        "track_src_ip": None,
        # REQUIRED, 1..255 (error if out of range; instance rejected if unset)
        "virtual_router_id": None,
        # 0..255; default 255 for IPv4; only valid with unicast peers
        "unicast_ttl": None,
        # 2 or 3; must not conflict with a version already set/deduced; IPv6 -> 3; default global vrrp_version
        # (2)
        "version": None,
        # 1..255 (255 = address owner); invalid -> error and 100. Unset: 255 if state MASTER else 100
        "priority": None,
        # decimal seconds; parser accepts 0.01..255 (us resolution). VRRPv2: whole seconds 1..255 (fractions
        # rounded, 0 -> 1). VRRPv3: centiseconds, max 40.95 s (>= 40.96 clamped), rounded to 10 ms. Default 1
        "advert_int": None,
        # value block: '<IP>[/<PREFIX>] [brd ..] [dev ..] [scope ..] [label ..] ...'
        "virtual_ipaddress": "LIST",
        # value block, same syntax as virtual_ipaddress
        "virtual_ipaddress_excluded": "LIST",
        "promote_secondaries": None,
        # deprecated here - use the root linkbeat_interfaces block
        "linkbeat_use_polling": None,
        # value block (ip route syntax)
        "virtual_routes": "LIST",
        # value block (ip rule syntax)
        "virtual_rules": "LIST",
        "accept": None,
        # built with _WITH_FIREWALL_
        "no_accept": None,
        "skip_check_adv_addr": None,
        "strict_mode": None,
        # preempt is the default
        "preempt": None,
        # reset if priority 255 or state MASTER
        "nopreempt": None,
        # decimal seconds 0..1000 (TIMER_MAX_SEC), us resolution; invalid -> 0; cleared with state MASTER,
        # strict mode or nopreempt
        "preempt_delay": None,
        "debug": None,
        "notify_backup": None,
        "notify_master": None,
        "notify_fault": None,
        "notify_stop": None,
        "notify_deleted": None,
        "notify": None,
        "notify_master_rx_lower_pri": None,
        "smtp_alert": None,
        "notify_priority_changes": None,
        # deprecated after v1.2.19 - use global_defs lvs_sync_daemon
        "lvs_sync_daemon_interface": None,
        # integer seconds 0..4294 (UINT_MAX/TIMER_HZ); default global (5)
        "garp_master_delay": None,
        # integer seconds 0..UINT_MAX; default global (0 = off)
        "garp_master_refresh": None,
        # 0..UINT_MAX, 0 -> error and set to 1; default global (5)
        "garp_master_repeat": None,
        # 0..UINT_MAX, 0 -> set to 1; default global (1)
        "garp_master_refresh_repeat": None,
        # integer seconds 0..4294; default global (= garp master delay); strict -> 0
        "garp_lower_prio_delay": None,
        # 0..INT_MAX; default global (= garp master repeat); strict -> 0
        "garp_lower_prio_repeat": None,
        # 1..100; default global (3); strict mode forces 3
        "down_timer_adverts": None,
        # built with _HAVE_VRRP_VMAC_
        "garp_extra_if": None,
        # deprecated after v2.2.2 -> garp_extra_if (same handler)
        "vmac_garp_intvl": None,
        "lower_prio_no_advert": None,
        "higher_prio_send_advert": None,
        "kernel_rx_buf_size": None,
        # only with _WITH_VRRP_AUTH_; ignored (cleared) for VRRPv3 and in strict mode
        "authentication": "authentication",
        # since v2.2.8
        "no_virtual_ipaddress": None,
        # since v2.2.8
        "v3_checksum_as_v2": None,
        # since v2.2.8; optional highest_other_priority 1..254 (default 254)
        "timer_expired_backup": None,
        # since v2.3.2; misnamed synonym of timer_expired_backup, warns
        "thread_timer_expired": None,
        # since v2.3.3
        "owner_ignore_adverts": None,
        # since v2.4.0
        "auth_hmac": "auth_hmac",
    },
    # vrrp_instance { authentication { } } (only when built with _WITH_VRRP_AUTH_, the default).
    "authentication": {
        # PASS|AH; anything else -> error
        "auth_type": None,
        # longer than 8 characters -> truncated to 8 (auth_data[8]) with error
        "auth_pass": None,
    },
    # vrrp_instance { auth_hmac { } } - new in v2.4.0 (not in v2.2.7).
    "auth_hmac": {
        # since v2.4.0
        "key": None,
        # since v2.4.0
        "active_key": None,
        # since v2.4.0; seconds 1..300
        "time_window": None,
        # since v2.4.0
        "anti_replay": None,
        # since v2.4.0
        "mode": None,
    },
    # vrrp_sync_group NAME { }.
    "vrrp_sync_group": {
        # value block of vrrp_instance names
        "group": "LIST",
        # value block, same syntax as in vrrp_instance
        "track_interface": "LIST",
        # value block, same syntax as in vrrp_instance
        "track_script": "LIST",
        # value block, same syntax as in vrrp_instance
        "track_file": "LIST",
        # value block, same syntax as in vrrp_instance
        "track_process": "LIST",
        # value block, same syntax as in vrrp_instance
        "track_bfd": "LIST",
        "notify_backup": None,
        "notify_master": None,
        "notify_fault": None,
        "notify_stop": None,
        "notify": None,
        "smtp_alert": None,
        # deprecated - use track_* on the sync group
        "global_tracking": None,
        "sync_group_tracking_weight": None,
        "notify_priority_changes": None,
    },
    # vrrp_track_process NAME { } (built with _WITH_TRACK_PROCESS_).
    "vrrp_track_process": {
        "process": None,
        "param_match": None,
        # -254..254 [reverse]; default 0
        "weight": None,
        # 1..65535, must be <= quorum_max; default 1
        "quorum": None,
        "quorum_max": None,
        "delay": None,
        "terminate_delay": None,
        "fork_delay": None,
        "full_command": None,
    },
    # garp_group { }.
    "garp_group": {
        "garp_interval": None,
        "gna_interval": None,
        "interface": None,
        # value block of interface names
        "interfaces": "LIST",
    },
    # track_group NAME { group { ... } } (root keyword, not in the man page).
    "track_group": {
        # value block of vrrp_instance names
        "group": "LIST",
    },
    # bfd_instance NAME { } - bfd/bfd_parser.c init_bfd_keywords() (built with _WITH_BFD_).
    "bfd_instance": {
        "source_ip": None,
        "neighbor_ip": None,
        # synonym of neighbor_ip (same handler)
        "neighbour_ip": None,
        "min_rx": None,
        "min_tx": None,
        "idle_tx": None,
        "multiplier": None,
        "passive": None,
        "ttl": None,
        # same handler as ttl (IPv6 name)
        "hoplimit": None,
        "max_hops": None,
        # -253..253 [reverse] (vrrp process only)
        "weight": None,
        "vrrp": None,
        "checker": None,
        # since v2.2.8
        "multihop": None,
    },
    # virtual_server_group NAME { } - in keepalived this is a value block read by alloc_value_block(): each
    # line is '<IP>[-<last octet/hextet>] [<PORT>]' or 'fwmark <N> [inet|inet6]'. 'fwmark' is the only word
    # with a meaning of its own; it is not an installed keyword.
    "virtual_server_group": {
        "fwmark": None,
    },
    # virtual_server <IP> [<PORT>] | fwmark <N> | group <NAME> { } - check/check_parser.c.
    "virtual_server": {
        # inet|inet6
        "ip_family": None,
        # 1..UINT32_MAX at this level (checker level allows 0)
        "retry": None,
        # decimal seconds >= 0 (us resolution)
        "delay_before_retry": None,
        # decimal seconds >= 0 (us resolution)
        "warmup": None,
        # decimal seconds, 0.000001..4294.967295; default 5
        "connect_timeout": None,
        # decimal seconds, us resolution, must be > 0 (min 0.000001); default 60
        "delay_loop": None,
        "inhibit_on_failure": None,
        # legacy name of lvs_sched (same handler): rr|wrr|lc|wlc|lblc|sh|mh|dh|fo|ovf|lblcr|sed|nq|twos
        "lb_algo": None,
        # documented name; rr|wrr|lc|wlc|lblc|sh|mh|dh|fo|ovf|lblcr|sed|nq|twos; default wlc
        "lvs_sched": None,
        "hashed": None,
        "ops": None,
        # flag-1..3, sh-*, mh-* only when IP_VS_SVC_F_SCHED1 is defined
        "flag-1": None,
        "flag-2": None,
        "flag-3": None,
        "sh-port": None,
        "sh-fallback": None,
        "mh-port": None,
        "mh-fallback": None,
        # legacy name of lvs_method (same handler)
        "lb_kind": None,
        # NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]; default NAT
        "lvs_method": None,
        "persistence_engine": None,
        # seconds 1..2678400 (31 days); keyword alone -> 360
        "persistence_timeout": None,
        # IPv4 netmask, or IPv6 prefix length 1..128
        "persistence_granularity": None,
        # TCP|UDP|SCTP (case-insensitive)
        "protocol": None,
        "ha_suspend": None,
        "smtp_alert": None,
        "virtualhost": None,
        # built with _WITH_SNMP_CHECKER_
        "snmp_name": None,
        "alpha": None,
        "omega": None,
        "quorum_up": None,
        "quorum_down": None,
        # 1..UINT_MAX; invalid -> error and 1; default 1
        "quorum": None,
        # 0..UINT_MAX; default 0
        "hysteresis": None,
        # 1..2147483647 (IPVS_WEIGHT_LIMIT = INT32_MAX); default 1; default weight of real servers
        "weight": None,
        "sorry_server": None,
        "sorry_server_inhibit": None,
        "sorry_server_lvs_method": None,
        "real_server": "real_server",
    },
    # virtual_server { real_server <IP> [<PORT>] { } }.
    "real_server": {
        # 0..2147483647 (IPVS_WEIGHT_LIMIT); default = virtual_server weight (1)
        "weight": None,
        "lvs_method": None,
        # 0..UINT_MAX
        "uthreshold": None,
        # 0..UINT_MAX
        "lthreshold": None,
        "inhibit_on_failure": None,
        "notify_up": None,
        "notify_down": None,
        "alpha": None,
        # 1..UINT32_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        "connect_timeout": None,
        "delay_loop": None,
        "smtp_alert": None,
        "virtualhost": None,
        "snmp_name": None,
        "MISC_CHECK": "MISC_CHECK",
        "SMTP_CHECK": "SMTP_CHECK",
        "TCP_CHECK": "TCP_CHECK",
        "PING_CHECK": "PING_CHECK",
        "UDP_CHECK": "UDP_CHECK",
        "HTTP_GET": "HTTP_GET",
        # same keyword set as HTTP_GET (plus tls_compliant since v2.2.8)
        "SSL_GET": "HTTP_GET",
        "DNS_CHECK": "DNS_CHECK",
        "FILE_CHECK": "FILE_CHECK",
        "BFD_CHECK": "BFD_CHECK",
    },
    # real_server { TCP_CHECK { } } - check_tcp.c + install_checker_common_keywords(true).
    "TCP_CHECK": {
        "connect_ip": None,
        # 1..65535; default the real server's port
        "connect_port": None,
        "bindto": None,
        "bind_port": None,
        "bind_if": None,
        # decimal seconds 0.000001..4294.967295; default the real_server/virtual_server value (5)
        "connect_timeout": None,
        # built with _WITH_SO_MARK_
        "fwmark": None,
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
    },
    # real_server { HTTP_GET { } } and SSL_GET { } (same keyword set, install_http_ssl_check_keyword();
    # tls_compliant is SSL_GET only).
    "HTTP_GET": {
        "connect_ip": None,
        # 1..65535; default the real server's port
        "connect_port": None,
        "bindto": None,
        "bind_port": None,
        "bind_if": None,
        # decimal seconds 0.000001..4294.967295; default the real_server/virtual_server value (5)
        "connect_timeout": None,
        # built with _WITH_SO_MARK_
        "fwmark": None,
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
        # deprecated -> retry (logs an error, still applied)
        "nb_get_retry": None,
        "virtualhost": None,
        # 1.0|1.1|1.0C|1.0c; default 1.0
        "http_protocol": None,
        # built with _HAVE_SSL_SET_TLSEXT_HOST_NAME_
        "enable_sni": None,
        "fast_recovery": None,
        "url": "url",
        # since v2.2.8; SSL_GET only
        "tls_compliant": None,
    },
    # HTTP_GET/SSL_GET { url { } }.
    "url": {
        "path": None,
        "digest": None,
        # list of codes or ranges 'A-B' within 100..599; default 200-299
        "status_code": None,
        "virtualhost": None,
        # regex_* keywords built with _WITH_REGEX_CHECK_ (regex_stack also needs PCRE2 JIT)
        "regex": None,
        "regex_no_match": None,
        "regex_options": None,
        "regex_min_offset": None,
        "regex_max_offset": None,
        "regex_stack": None,
        # since v2.2.8; SSL_GET only
        "tls_compliant": None,
    },
    # real_server { MISC_CHECK { } } - install_checker_common_keywords(false): no connect_* / bind* /
    # connect_timeout / fwmark.
    "MISC_CHECK": {
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
        # quoted string allowed
        "misc_path": None,
        # integer seconds 0..4294; 0/unset -> the virtual server's delay_loop
        "misc_timeout": None,
        "misc_dynamic": None,
        "user": None,
    },
    # real_server { SMTP_CHECK { } } - check_smtp.c.
    "SMTP_CHECK": {
        "helo_name": None,
        "connect_ip": None,
        # 1..65535; default the real server's port
        "connect_port": None,
        "bindto": None,
        "bind_port": None,
        "bind_if": None,
        # decimal seconds 0.000001..4294.967295; default the real_server/virtual_server value (5)
        "connect_timeout": None,
        # built with _WITH_SO_MARK_
        "fwmark": None,
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
        # deprecated nested block - define several SMTP_CHECKs instead
        "host": "host",
    },
    # SMTP_CHECK { host { } } - deprecated nested block (WITH_HOST_ENTRIES, still compiled in); same keywords
    # as the connection-checker common set.
    "host": {
        "connect_ip": None,
        # 1..65535; default the real server's port
        "connect_port": None,
        "bindto": None,
        "bind_port": None,
        "bind_if": None,
        # decimal seconds 0.000001..4294.967295; default the real_server/virtual_server value (5)
        "connect_timeout": None,
        # built with _WITH_SO_MARK_
        "fwmark": None,
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
    },
    # real_server { DNS_CHECK { } } - check_dns.c.
    "DNS_CHECK": {
        "connect_ip": None,
        # 1..65535; default the real server's port
        "connect_port": None,
        "bindto": None,
        "bind_port": None,
        "bind_if": None,
        # decimal seconds 0.000001..4294.967295; default the real_server/virtual_server value (5)
        "connect_timeout": None,
        # built with _WITH_SO_MARK_
        "fwmark": None,
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
        "type": None,
        "name": None,
    },
    # real_server { UDP_CHECK { } } - check_udp.c.
    "UDP_CHECK": {
        "connect_ip": None,
        # 1..65535; default the real server's port
        "connect_port": None,
        "bindto": None,
        "bind_port": None,
        "bind_if": None,
        # decimal seconds 0.000001..4294.967295; default the real_server/virtual_server value (5)
        "connect_timeout": None,
        # built with _WITH_SO_MARK_
        "fwmark": None,
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
        "payload": None,
        "require_reply": None,
        "min_reply_length": None,
        "max_reply_length": None,
    },
    # real_server { PING_CHECK { } } - check_ping.c.
    "PING_CHECK": {
        "connect_ip": None,
        # 1..65535; default the real server's port
        "connect_port": None,
        "bindto": None,
        "bind_port": None,
        "bind_if": None,
        # decimal seconds 0.000001..4294.967295; default the real_server/virtual_server value (5)
        "connect_timeout": None,
        # built with _WITH_SO_MARK_
        "fwmark": None,
        # 0..UINT_MAX
        "retry": None,
        "delay_before_retry": None,
        "warmup": None,
        # decimal seconds, must be > 0 (us resolution)
        "delay_loop": None,
        "alpha": None,
        "log_all_failures": None,
    },
    # real_server { FILE_CHECK { } } - check_file.c (refers to a root track_file).
    "FILE_CHECK": {
        "track_file": None,
        # -2147483647..2147483647 [reverse|noreverse]
        "weight": None,
    },
    # real_server { BFD_CHECK { } } - check_bfd.c.
    "BFD_CHECK": {
        "name": None,
        "alpha": None,
    },
    # SSL { } (root) - checker SSL context for SSL_GET.
    "SSL": {
        "password": None,
        "ca": None,
        "certificate": None,
        "key": None,
    },
}

#: (section, spelling) -> canonical keyword, for spellings keepalived treats as aliases or deprecated forms
KEEPALIVED_ALIASES: dict[tuple[str, str], str] = {
    # deprecated synonym after v2.0.20
    ("root", "vrrp_track_file"): "track_file",
    # deprecated since 12/07/20
    ("global_defs", "lvs_process_name"): "checker_process_name",
    # deprecated after v2.1.5
    ("global_defs", "lvs_flush_onstop"): "lvs_flush_on_stop",
    # deprecated after v2.2.2
    ("global_defs", "vrrp_vmac_garp_intvl"): "vrrp_garp_extra_if",
    # deprecated 02/02/2020
    ("global_defs", "vrrp_rlimit_rtime"): "vrrp_rlimit_rttime",
    # deprecated 02/02/2020
    ("global_defs", "checker_rlimit_rtime"): "checker_rlimit_rttime",
    # deprecated 02/02/2020
    ("global_defs", "bfd_rlimit_rtime"): "bfd_rlimit_rttime",
    # deprecated v2.0.0
    ("global_defs", "enable_snmp_keepalived"): "enable_snmp_vrrp",
    # deprecated after v2.2.2
    ("vrrp_instance", "vmac_garp_intvl"): "garp_extra_if",
    # since v2.3.2, warns
    ("vrrp_instance", "thread_timer_expired"): "timer_expired_backup",
    # legacy, undocumented; same handler
    ("virtual_server", "lb_algo"): "lvs_sched",
    # legacy, undocumented; same handler
    ("virtual_server", "lb_kind"): "lvs_method",
    # deprecated, logs an error
    ("HTTP_GET", "nb_get_retry"): "retry",
    # British spelling, same handler
    ("bfd_instance", "neighbour_ip"): "neighbor_ip",
    # same handler (IPv6 wording)
    ("bfd_instance", "hoplimit"): "ttl",
}
