"""Who answers, when: campaign windows, partner chains and referral lines. Pure: no Flask, Twilio, Redis or clock."""

from routing.configfile import ConfigError, Problem
from routing.decide import JST, Decision, Routing, load_routing

__all__ = ["JST", "ConfigError", "Decision", "Problem", "Routing", "load_routing"]
