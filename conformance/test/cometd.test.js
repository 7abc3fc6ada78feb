// The CometD JS client scenarios over long-polling (see lib/cometd-scenarios.js).
import { cometdScenarios } from "../lib/cometd-scenarios.js";

cometdScenarios("long-polling");
