/**
 * View-only enforcement moved into the RFB tracker, which follows both directions of a console
 * (handshake, viewer messages, console messages) and keeps its state across hibernation.
 */
export { RfbTracker, type Mode, type RfbTrackerState } from "./rfb/tracker.ts";
