"""Who answers, when: campaign windows, partner plans and referral lines. Pure: no Flask, Twilio, Redis or clock."""

from common.configfile import ConfigError, Problem
from common.facts import JST
from routing.check import load_routing
from routing.decide import Decision, Routing

__all__ = ["JST", "ConfigError", "Decision", "Problem", "Routing", "load_routing"]
