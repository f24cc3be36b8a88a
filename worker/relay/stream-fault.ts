/** Thrown by a stream's accounting or filtering when the viewer must be cut; closed with this code. */
export class StreamFault extends Error {
  readonly code: number;

  constructor(code: number, reason: string) {
    super(reason);
    this.code = code;
  }
}
