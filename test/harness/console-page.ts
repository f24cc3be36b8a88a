/// <reference lib="dom" />
/** Opens a console page in Chromium and waits until noVNC has painted the desktop. */
import type { Browser, Page } from "playwright-core";

/** Share of the canvas in a colour close to pure red (xlogo's background in the test desktop). */
export async function openAndReadRed(
  browser: Browser,
  pageUrl: string,
  screenshot?: string,
): Promise<{ share: number; width: number; height: number }> {
  const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  try {
    await page.goto(pageUrl);
    const seen = await readRed(page);
    if (screenshot) await page.screenshot({ path: screenshot });
    return seen;
  } finally {
    await page.close();
  }
}

/** On a console page already opened: waits until it is connected and mostly red, and says how much. */
export async function readRed(page: Page): Promise<{ share: number; width: number; height: number }> {
  await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
  const handle = await page.waitForFunction(
    () => {
      const canvas = document.querySelector("#screen canvas") as HTMLCanvasElement | null;
      if (!canvas || canvas.width < 100) return false;
      const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
      let red = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i]! > 200 && data[i + 1]! < 60 && data[i + 2]! < 60) red++;
      const share = red / (data.length / 4);
      return share > 0.4 ? { share, width: canvas.width, height: canvas.height } : false;
    },
    undefined,
    { timeout: 20_000, polling: 200 },
  );
  return (await handle.jsonValue()) as { share: number; width: number; height: number };
}

/** Opens a console page that is expected to fail, and returns what it tells the person. */
export async function openAndReadNotice(browser: Browser, pageUrl: string): Promise<string> {
  const page = await browser.newPage();
  try {
    await page.goto(pageUrl);
    await page.waitForSelector("body[data-state=closed]", { timeout: 30_000 });
    return (await page.textContent("#notice")) ?? "";
  } finally {
    await page.close();
  }
}
