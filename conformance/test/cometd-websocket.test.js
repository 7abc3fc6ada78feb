// The CometD JS client scenarios over WebSocket (see lib/cometd-scenarios.js):
// the client negotiates "websocket" and must not fall back to long-polling.
import { cometdScenarios } from "../lib/cometd-scenarios.js";

cometdScenarios("websocket");
