/** The slice of noVNC's RFB class the console page uses (noVNC ships no types). */
declare module "@novnc/novnc" {
  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, urlOrChannel: string | WebSocket | object, options?: { shared?: boolean; credentials?: { password?: string } });
    scaleViewport: boolean;
    clipViewport: boolean;
    viewOnly: boolean;
    sendCtrlAltDel(): void;
    /** Uses a QEMU extended key event (scancode from `code`) when the server offers them. */
    sendKey(keysym: number, code: string | null, down?: boolean): void;
    clipboardPasteFrom(text: string): void;
    focus(options?: FocusOptions): void;
    toBlob(callback: (blob: Blob | null) => void, type?: string, quality?: number): void;
    disconnect(): void;
    addEventListener(type: "connect", listener: (e: CustomEvent<Record<string, never>>) => void): void;
    addEventListener(type: "disconnect", listener: (e: CustomEvent<{ clean: boolean }>) => void): void;
    addEventListener(type: "desktopname", listener: (e: CustomEvent<{ name: string }>) => void): void;
    addEventListener(type: "clipboard", listener: (e: CustomEvent<{ text: string }>) => void): void;
    addEventListener(type: "securityfailure", listener: (e: CustomEvent<{ status: number; reason?: string }>) => void): void;
  }
}
