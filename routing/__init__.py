"""Who answers, when: campaign windows, partner plans and referral lines. Pure: no Flask, Twilio, Redis or clock."""

from routing.check import load_routing
from routing.configfile import ConfigError, Problem
from routing.decide import JST, Decision, Routing

__all__ = ["JST", "ConfigError", "Decision", "Problem", "Routing", "load_routing"]
