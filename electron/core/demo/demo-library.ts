import type { z } from 'zod';
import type { demoReportSchema } from '../../common/contract.js';
import fs from 'node:fs';
import path from 'node:path';
import { sharp } from '../runtime/lazy-packages.js';
import { seededRandom } from '../../common/seeded-random.js';
import { DermError } from '../../common/errors.js';
import { formatCsv } from '../csv/csv.js';
import type { DatasetImportReport } from '../datasets/dataset-report.js';
import type { DatasetsService } from '../datasets/datasets.service.js';
import type { EmbedLibraryResult, EmbeddingService } from '../embeddings/embedding.service.js';
import { isCancellation, throwIfCancelled, type JobControl, type JobStatus } from '../jobs/job.js';
import type { LabelsService } from '../labels/labels.service.js';
import type { Library } from '../library/library.js';
import type { LiveImagesRow } from '../library/table-rows.js';
import { pythonDict, pythonList, scinCaseColumns, scinLabelColumns } from './scin-files.js';
import { skinImagePixels } from './skin-photos.js';

/** Folder inside the library that holds the generated dataset (the imported images stay there). */
export const demoFolderName = 'demo-dataset';
/** The second condition reader; SCIN's own condition labels are the first (scin-dermatologists). */
export const demoSecondReader = 'demo-second-reader';

/**
 * Conditions of the demo, each drawn its own way (lesion colour and count), so a probe has something
 * real to learn and similar-case search finds look-alikes.
 */
const demoConditions = [
  { name: 'Eczema', colour: 1, lesions: 3 },
  { name: 'Psoriasis', colour: 4, lesions: 2 },
  { name: 'Urticaria', colour: 3, lesions: 3 },
  { name: 'Insect Bite', colour: 1, lesions: 1 },
  { name: 'Melanocytic Nevus', colour: 2, lesions: 1 },
] as const;

/** Skin tone (index into skinTones, light to deep) drawn for each Fitzpatrick type I–VI. */
const toneOfType = [0, 2, 4, 5, 7, 9] as const;
const bodyParts = ['body_parts_arm', 'body_parts_leg', 'body_parts_torso_front', 'body_parts_head_or_neck', 'body_parts_back_of_hand'] as const;
const shotTypes = ['CLOSE_UP', 'AT_AN_ANGLE', 'AT_DISTANCE'] as const;

export interface DemoOptions extends JobControl {
  /** Drawn cases (default 60: 10 per Fitzpatrick type, 12 per condition, enough for `probe train --top 5`). */
  cases?: number;
  /** Photo width in pixels (height is 3/4 of it; default 400, so the short side is the low-resolution flag's 300 px). */
  photoSize?: number;
  /** Skip the embedding step (tests of the dataset alone). */
  embed?: boolean;
  modelId?: string;
}

export type DemoReport = z.infer<typeof demoReportSchema>;

interface DemoCase {
  caseId: string;
  fitzpatrick: number;
  condition: (typeof demoConditions)[number];
  secondReaderCondition: string;
  images: Array<{ relative: string; seed: number; shotType: string }>;
  secondDermatologistType: number;
  monkUs: number;
  monkIndia: number;
  bodyPart: string;
  age: string;
  sex: string;
}

/**
 * `dermws demo` and the "Try with demo data" button: writes a small SCIN-shaped dataset into the
 * library folder (drawn lesions on skin-tone backgrounds across all six Fitzpatrick types, cases with
 * 1–3 photos, condition labels from two readers, Fitzpatrick and Monk labels, a few broken files and
 * duplicates), imports it with the SCIN importer, and embeds it with the default encoder. Every step
 * is the product's own; running it again after a cancel resumes (the files are written once, the
 * import and the embedding skip what is done).
 */
export class DemoLibraryService {
  constructor(
    private readonly library: Library,
    private readonly datasets: DatasetsService,
    private readonly labels: LabelsService,
    private readonly embeddings: EmbeddingService,
  ) {}

  async create(options: DemoOptions = {}): Promise<DemoReport> {
    const caseCount = options.cases ?? 60;
    if (!Number.isInteger(caseCount) || caseCount < 6 || caseCount > 600) {
      throw new DermError('invalid-input', `The demo needs 6 to 600 cases (one per Fitzpatrick type at least); got ${String(caseCount)}.`, { field: 'cases' });
    }
    const size = options.photoSize ?? 400;
    const root = path.join(this.library.paths.root, demoFolderName);
    this.refuseForeignImages(root);

    const cases = planCases(caseCount);
    let files: DemoFiles;
    try {
      files = await this.writeDataset(root, cases, size, options);
      throwIfCancelled(options.signal);
    } catch (error) {
      if (isCancellation(error)) throw new DermError('cancelled', 'The demo was cancelled while drawing its photos; run it again to finish.', {});
      throw error;
    }

    const datasetImport = await this.datasets.importScin(root, {
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (progress) => options.onProgress?.({ ...progress, job: 'demo', message: 'Importing the demo dataset' }),
    });
    if (datasetImport.status === 'cancelled') return this.report('cancelled', root, cases, files, datasetImport, null, null);

    const secondReader = this.labelSecondReader(root, cases);
    let embedding: EmbedLibraryResult | null = null;
    if (options.embed !== false) {
      try {
        embedding = await this.embeddings.embedLibrary({
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.modelId ? { modelId: options.modelId } : {}),
          onProgress: (progress) => options.onProgress?.({ ...progress, job: 'demo', message: 'Embedding with the default encoder' }),
        });
      } catch (error) {
        if (isCancellation(error)) return this.report('cancelled', root, cases, files, datasetImport, secondReader, null);
        throw error;
      }
    }
    // The dataset import reports the broken files on purpose, so 'partial' there is the expected outcome.
    const status: JobStatus = embedding && embedding.status !== 'success' ? embedding.status : 'success';
    return this.report(status, root, cases, files, datasetImport, secondReader, embedding);
  }

  /** Demo images go into an empty library (or one holding only an earlier, interrupted demo). */
  private refuseForeignImages(root: string): void {
    const foreign = this.library.db
      .prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM images WHERE substr(original_path, 1, ?) <> ?')
      .get(root.length + 1, root + path.sep)!;
    if (foreign.n > 0) {
      throw new DermError(
        'invalid-input',
        `The library at ${this.library.paths.root} already holds ${foreign.n} image${foreign.n === 1 ? '' : 's'} of your own; the demo only goes into an empty library (choose another with --library DIR).`,
        { field: 'library' },
      );
    }
  }

  private async writeDataset(root: string, cases: DemoCase[], size: number, control: JobControl): Promise<DemoFiles> {
    const dataset = path.join(root, 'dataset');
    const images = path.join(dataset, 'images');
    fs.mkdirSync(images, { recursive: true });
    const complete = path.join(root, '.complete');
    const files: DemoFiles = {
      outsidePhoto: path.join(root, 'outside-photo.jpg'),
      broken: ['dataset/images/demo-truncated.png', 'dataset/images/demo-not-a-photo.png'],
      duplicates: {
        byteCopy: 'dataset/images/demo-byte-copy.png',
        pixelCopy: 'dataset/images/demo-pixel-copy.png',
        nearCopy: 'dataset/images/demo-near-copy.png',
      },
    };
    if (fs.existsSync(complete)) return files;

    const total = cases.reduce((sum, entry) => sum + entry.images.length, 0);
    let done = 0;
    const height = Math.round(size * 0.75);
    const draw = (entry: DemoCase, seed: number) =>
      skinImagePixels({
        width: size,
        height,
        seed,
        toneIndex: toneOfType[entry.fitzpatrick - 1],
        lesionColourIndex: entry.condition.colour,
        lesions: entry.condition.lesions,
      });
    for (const entry of cases) {
      for (const image of entry.images) {
        throwIfCancelled(control.signal);
        const { data, width, height: rows } = draw(entry, image.seed);
        await writeAtomically(
          path.join(root, image.relative),
          await sharp(data, { raw: { width, height: rows, channels: 3 } })
            .png()
            .toBuffer(),
        );
        control.onProgress?.({
          job: 'demo',
          done: ++done,
          total,
          current: image.relative,
          ratePerSecond: 0,
          etaSeconds: null,
          message: 'Drawing the demo photos',
        });
      }
    }
    // Duplicates: the first photo of case 1 again, byte for byte (the import stores it once); its pixels
    // re-encoded (a different file with identical pixels); and case 2's photo a little brighter and
    // smaller (a near-duplicate only the embeddings find).
    const first = path.join(root, cases[0]!.images[0]!.relative);
    await writeAtomically(path.join(root, files.duplicates.byteCopy), fs.readFileSync(first));
    await writeAtomically(path.join(root, files.duplicates.pixelCopy), await sharp(first).png({ compressionLevel: 2, palette: false }).toBuffer());
    const second = path.join(root, cases[1]!.images[0]!.relative);
    await writeAtomically(
      path.join(root, files.duplicates.nearCopy),
      await sharp(second)
        .modulate({ brightness: 1.04 })
        .resize(Math.round(size * 0.9))
        .png()
        .toBuffer(),
    );
    // Broken files, listed in the CSV like any photo: the import reports each by line and column.
    const truncated = await sharp(draw(cases[2]!, 9001).data, { raw: { width: size, height, channels: 3 } })
      .png()
      .toBuffer();
    await writeAtomically(path.join(root, files.broken[0]!), truncated.subarray(0, Math.floor(truncated.length / 3)));
    await writeAtomically(path.join(root, files.broken[1]!), Buffer.from('This is a text file with a .png name, not a photograph.\n'));
    // An outside photo (not listed, not imported) to search with.
    const outside = draw(cases[3]!, 9002);
    await writeAtomically(
      files.outsidePhoto,
      await sharp(outside.data, { raw: { width: outside.width, height: outside.height, channels: 3 } })
        .jpeg({ quality: 90 })
        .toBuffer(),
    );

    await writeAtomically(path.join(dataset, 'scin_cases.csv'), Buffer.from(formatCsv(casesTable(cases, files))));
    await writeAtomically(path.join(dataset, 'scin_labels.csv'), Buffer.from(formatCsv(labelsTable(cases, files))));
    fs.writeFileSync(complete, `${new Date().toISOString()}\n`);
    return files;
  }

  /** The second reader's condition labels, agreeing with SCIN's dermatologists on most cases. */
  private labelSecondReader(root: string, cases: DemoCase[]): DemoReport['secondReader'] {
    const idOf = this.library.db.prepare<unknown[], Pick<LiveImagesRow, 'id'>>('SELECT id FROM live_images WHERE original_path = ?');
    const rows = cases.flatMap((entry) =>
      entry.images.flatMap((image) => {
        const row = idOf.get(path.join(root, image.relative));
        return row ? [{ imageId: row.id, kind: 'condition', value: entry.secondReaderCondition, confidence: 3 }] : [];
      }),
    );
    const report = this.labels.importLabels(rows, { annotator: demoSecondReader, origin: 'imported' });
    return { changedSlots: report.changedSlots, unchangedSlots: report.unchangedSlots, labels: report.labels };
  }

  private report(
    status: JobStatus,
    root: string,
    cases: DemoCase[],
    files: DemoFiles,
    datasetImport: DatasetImportReport,
    secondReader: DemoReport['secondReader'] | null,
    embedding: EmbedLibraryResult | null,
  ): DemoReport {
    return {
      status,
      libraryFolder: this.library.paths.root,
      datasetFolder: root,
      outsidePhoto: files.outsidePhoto,
      // The drawn cases, the re-submission holding the three copies, and the case listing the broken files.
      cases: cases.length + 2,
      photos: cases.reduce((sum, entry) => sum + entry.images.length, 0) + 3 + files.broken.length,
      brokenFiles: files.broken.map((relative) => path.join(root, relative)),
      duplicateFiles: {
        byteCopy: path.join(root, files.duplicates.byteCopy),
        pixelCopy: path.join(root, files.duplicates.pixelCopy),
        nearCopy: path.join(root, files.duplicates.nearCopy),
      },
      datasetImport,
      secondReader: secondReader ?? { changedSlots: 0, unchangedSlots: 0, labels: 0 },
      embedding,
    };
  }
}

interface DemoFiles {
  outsidePhoto: string;
  broken: string[];
  duplicates: { byteCopy: string; pixelCopy: string; nearCopy: string };
}

/** Case ids shaped like SCIN's (19-digit signed integers, read as text). */
const caseIdOf = (index: number) => `-${(5200000000000000000n + BigInt(index) * 104723n).toString()}`;

function planCases(count: number): DemoCase[] {
  const random = seededRandom(2026);
  const ages = ['AGE_18_TO_29', 'AGE_30_TO_39', 'AGE_40_TO_49', 'AGE_50_TO_59', 'AGE_60_TO_69', 'AGE_70_TO_79'];
  const sexes = ['FEMALE', 'MALE'];
  const cases: DemoCase[] = [];
  let seed = 100;
  for (let index = 0; index < count; index++) {
    const fitzpatrick = (index % 6) + 1;
    // Conditions rotate independently of skin type, so every type has several conditions.
    const condition = demoConditions[Math.floor(index / 6 + index) % demoConditions.length]!;
    const photos = 1 + (index % 3);
    // The second reader agrees on about four cases in five and otherwise names the next condition.
    const agrees = random() < 0.8;
    const other = demoConditions[(demoConditions.indexOf(condition) + 1) % demoConditions.length]!;
    const tone = toneOfType[fitzpatrick - 1];
    cases.push({
      caseId: caseIdOf(index),
      fitzpatrick,
      condition,
      secondReaderCondition: agrees ? condition.name : other.name,
      images: Array.from({ length: photos }, (_, photo) => ({
        relative: `dataset/images/${caseIdOf(index).slice(1, 10)}${index}-${photo + 1}.png`,
        seed: seed++,
        shotType: shotTypes[(index + photo) % shotTypes.length]!,
      })),
      // The second dermatologist's Fitzpatrick call is one type off on about one case in four.
      secondDermatologistType: random() < 0.75 ? fitzpatrick : Math.min(6, Math.max(1, fitzpatrick + (random() < 0.5 ? -1 : 1))),
      monkUs: tone + 1,
      monkIndia: Math.min(10, Math.max(1, tone + 1 + (random() < 0.3 ? 1 : 0))),
      bodyPart: bodyParts[index % bodyParts.length]!,
      age: ages[index % ages.length]!,
      sex: sexes[index % sexes.length]!,
    });
  }
  return cases;
}

/** The extra rows: the duplicate copies and the broken files, each its own case like a re-submission. */
function extraCase(cases: DemoCase[], files: DemoFiles): DemoCase {
  const template = cases[0]!;
  return {
    ...template,
    caseId: caseIdOf(cases.length),
    images: [files.duplicates.byteCopy, files.duplicates.pixelCopy, files.duplicates.nearCopy].map((relative, photo) => ({
      relative,
      seed: 0,
      shotType: shotTypes[photo]!,
    })),
  };
}

function brokenCase(cases: DemoCase[], files: DemoFiles): DemoCase {
  return {
    ...cases[2]!,
    caseId: caseIdOf(cases.length + 1),
    images: files.broken.map((relative, photo) => ({ relative, seed: 0, shotType: shotTypes[photo]! })),
  };
}

function casesTable(cases: DemoCase[], files: DemoFiles): string[][] {
  const rows: string[][] = [scinCaseColumns.slice()];
  for (const entry of [...cases, extraCase(cases, files), brokenCase(cases, files)]) {
    rows.push(
      scinCaseColumns.map((column) => {
        if (column === 'case_id') return entry.caseId;
        if (column === 'source') return 'USER';
        if (column === 'release') return 'DEMO';
        if (column === 'year') return '2026';
        if (column === 'age_group') return entry.age;
        if (column === 'sex_at_birth') return entry.sex;
        if (column === 'fitzpatrick_skin_type') return `FST${entry.fitzpatrick}`;
        if (column === entry.bodyPart) return 'YES';
        if (column === 'related_category') return 'RASH';
        if (column === 'condition_duration') return 'ONE_TO_FOUR_WEEKS';
        const image = /^image_(\d)_(path|shot_type)$/.exec(column);
        if (image) {
          const photo = entry.images[Number(image[1]) - 1];
          return photo ? (image[2] === 'path' ? photo.relative : photo.shotType) : '';
        }
        return '';
      }),
    );
  }
  return rows;
}

function labelsTable(cases: DemoCase[], files: DemoFiles): string[][] {
  const rows: string[][] = [scinLabelColumns.slice()];
  for (const entry of [...cases, extraCase(cases, files), brokenCase(cases, files)]) {
    const types = [entry.fitzpatrick, entry.secondDermatologistType];
    rows.push(
      scinLabelColumns.map((column) => {
        if (column === 'case_id') return entry.caseId;
        if (/^dermatologist_gradable_for_skin_condition_[12]$/.test(column)) return 'DEFAULT_YES_IMAGE_QUALITY_SUFFICIENT';
        if (column === 'dermatologist_skin_condition_on_label_name') return pythonList([entry.condition.name, entry.condition.name]);
        if (column === 'dermatologist_skin_condition_confidence') return pythonList([4, 3]);
        if (column === 'weighted_skin_condition_label') return pythonDict({ [entry.condition.name]: 1 });
        const gradable = /^dermatologist_gradable_for_fitzpatrick_skin_type_([12])$/.exec(column);
        if (gradable) return 'YES';
        const fitzpatrick = /^dermatologist_fitzpatrick_skin_type_label_([12])$/.exec(column);
        if (fitzpatrick) return `FST${types[Number(fitzpatrick[1]) - 1]}`;
        if (column === 'gradable_for_monk_skin_tone_us' || column === 'gradable_for_monk_skin_tone_india') return 'YES';
        if (column === 'monk_skin_tone_label_us') return String(entry.monkUs);
        if (column === 'monk_skin_tone_label_india') return `${entry.monkIndia}.0`;
        return '';
      }),
    );
  }
  return rows;
}

/** Writes through a temporary file and a rename, so an interrupted demo never leaves half a photo. */
async function writeAtomically(file: string, content: Buffer): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.partial`;
  await fs.promises.writeFile(temporary, content);
  await fs.promises.rename(temporary, file);
}
