/**
 * The RFB watch each stream gets (see `RfbWatch` in browser-stream.ts). Interim version on the
 * old view-only filter: it is replaced by worker/relay/rfb/.
 */
import type { RfbWatch, RfbWatchFactory } from "./browser-stream.ts";
import { ViewOnlyFilter } from "./view-only.ts";

export const rfbWatch: RfbWatchFactory = ({ viewOnly }, state) => {
  const filter = !viewOnly ? null : state ? ViewOnlyFilter.resumed((state as { inMessages: boolean }).inMessages) : new ViewOnlyFilter();
  let dirty = false;
  const watch: RfbWatch = {
    fromServer(bytes) {
      filter?.observeServer(bytes);
      return [bytes];
    },
    fromViewer(bytes) {
      if (!filter) return { toServer: bytes, consumed: 0 };
      const was = filter.inMessages;
      const toServer = filter.push(bytes);
      if (filter.inMessages !== was) dirty = true;
      return { toServer, consumed: 0 };
    },
    takeHeldForServer: () => null,
    get handshakeDone() {
      return true;
    },
    fencePending: false,
    provesConsumption: false,
    snapshot: () => ({ inMessages: filter?.inMessages ?? true }),
    get dirty() {
      return dirty;
    },
    clearDirty() {
      dirty = false;
    },
  };
  return watch;
};
