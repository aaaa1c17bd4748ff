"""LoadResult: what a load hands on, in process and across the reload worker's pipe."""

from __future__ import annotations

import pickle

from keepalived_py.config import load_config

CONF = """
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    advert_int 2
    virtual_ipaddress {
        192.0.2.10/24
    }
}
"""


def test_origins_locate_a_keyword_of_a_record(write_conf):
    path = write_conf(CONF)
    result = load_config(path, host_checks=False, keep_origins=True)
    assert result.config is not None and result.origins is not None
    loc = result.origins.loc(result.config.vrrp_instances[0], "advert_int")
    assert (loc.file, loc.line, loc.col) == (str(path), 5, 5)


def test_origins_stay_behind_when_pickled(write_conf):
    """The reload worker pickles its LoadResult; origins are keyed by object id, meaningless in another
    process, and would carry every block and token of the configuration along."""
    result = load_config(write_conf(CONF), host_checks=False, keep_origins=True)
    copy = pickle.loads(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    assert copy.origins is None
    assert copy.config == result.config and copy.diagnostics == result.diagnostics
    assert result.origins is not None


def test_origins_are_kept_only_when_asked(write_conf):
    """A daemon keeps its LoadResult while it runs: the blocks and tokens of a large configuration must not
    stay alive with it."""
    assert load_config(write_conf(CONF), host_checks=False).origins is None
